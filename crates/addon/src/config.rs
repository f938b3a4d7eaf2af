//! Typed hook configuration, serialized exactly as the framework accepts it.
//!
//! [`HookConfig`] models every binding of the module hook schema `module-hook-v1`
//! (`reference/addon-operator.md` §1.2). It has two serializations:
//!
//! * [`HookConfig::to_shell_json`]: the `--config` answer of a shell hook. The framework validates it
//!   with a strict OpenAPI schema (`additionalProperties: false`, `minItems: 1`), so unset options and
//!   empty arrays are omitted rather than written as `null`/`[]`.
//! * [`HookConfig::to_batch`]: one entry of `hook config` in batch mode (module-sdk's `HookConfig`,
//!   §8). Batch mode cannot express everything (no `group`, `executeHookOnEvent` is a boolean), so
//!   the conversion fails instead of silently changing the hook's behaviour.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Group every kubernetes and schedule binding of a batch hook is forced into (§8).
pub const BATCH_GROUP: &str = "main";

/// Configuration of one hook: its bindings and settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookConfig {
    /// Order among `onStartup` hooks; the hook runs once per module start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_startup: Option<u32>,
    /// Order among `beforeHelm` hooks; runs before every Helm render.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_helm: Option<u32>,
    /// Order among `afterHelm` hooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_helm: Option<u32>,
    /// Order among `beforeDeleteHelm` hooks (module disable, before uninstall).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_delete_helm: Option<u32>,
    /// Order among `afterDeleteHelm` hooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_delete_helm: Option<u32>,
    /// Cron bindings; omitted when empty because the schema has `minItems: 1`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<ScheduleBinding>,
    /// Kubernetes watch bindings; omitted when empty because the schema has `minItems: 1`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kubernetes: Vec<KubernetesBinding>,
    /// Rate limit of the hook; serialized per mode (Go duration string or nanoseconds).
    #[serde(skip)]
    pub settings: Option<Settings>,
}

/// Token-bucket rate limit of a hook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Minimal interval between two runs.
    pub execution_min_interval: Option<Duration>,
    /// Runs allowed in a burst.
    pub execution_burst: Option<u32>,
}

/// A `schedule[]` item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleBinding {
    /// Binding name in contexts.
    pub name: String,
    /// robfig/cron expression: 5 fields, or 6 with leading seconds.
    pub crontab: String,
    /// Failure is logged and the task dropped instead of retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_failure: Option<bool>,
    /// Kubernetes bindings whose snapshots the context carries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include_snapshots_from: Vec<String>,
    /// Named queue; `main` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Group name: contexts of one group are compacted and carry the group's snapshots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Watch event types of a kubernetes binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WatchEvent {
    /// The object appeared (or entered the selector's scope).
    Added,
    /// The object (or its filter result) changed.
    Modified,
    /// The object disappeared (or left the selector's scope).
    Deleted,
}

impl WatchEvent {
    /// Every event type, the framework's default for `executeHookOnEvent`.
    pub const ALL: [WatchEvent; 3] = [WatchEvent::Added, WatchEvent::Modified, WatchEvent::Deleted];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            WatchEvent::Added => "Added",
            WatchEvent::Modified => "Modified",
            WatchEvent::Deleted => "Deleted",
        }
    }
}

/// A `kubernetes[]` item.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesBinding {
    /// Binding name; unique within the hook (`includeSnapshotsFrom`, snapshots map).
    pub name: String,
    /// `group/version` of the watched kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind (case-insensitive; plural and short names are accepted by the framework).
    pub kind: String,
    /// Only objects with these names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_selector: Option<NameSelector>,
    /// Only objects with matching labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// Only objects with matching fields (ANDed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<FieldSelector>,
    /// Only objects in matching namespaces; all namespaces when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<NamespaceSelector>,
    /// gojq program; its result arrives as `filterResult` and drives `Modified` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jq_filter: Option<String>,
    /// Events that run the hook; `None` = all three, `Some(vec![])` = snapshot only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execute_hook_on_event: Option<Vec<WatchEvent>>,
    /// Run on the initial list (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execute_hook_on_synchronization: Option<bool>,
    /// Module start waits for this binding's Synchronization run (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_for_synchronization: Option<bool>,
    /// Keep and send full objects (`object` key); default true for shell hooks, false in batch mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_full_objects_in_memory: Option<bool>,
    /// Failure is logged and the task dropped instead of retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_failure: Option<bool>,
    /// Periodic relist (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resynchronization_period: Option<String>,
    /// Other kubernetes bindings whose snapshots the contexts carry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include_snapshots_from: Vec<String>,
    /// Named queue; `main` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Group name: contexts of one group are compacted and carry the group's snapshots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// `{matchNames: [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameSelector {
    /// Exact names.
    pub match_names: Vec<String>,
}

/// A Kubernetes label selector.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must be present with these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements, ANDed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One set-based label requirement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values for `In`/`NotIn`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// `{matchExpressions: [{field, operator, value}]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldSelector {
    /// Requirements, ANDed.
    pub match_expressions: Vec<FieldSelectorExpression>,
}

/// One field requirement; the schema wants exactly these three keys, so `value` is always written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldSelectorExpression {
    /// Field path such as `metadata.name` or `spec.nodeName`.
    pub field: String,
    /// `=`, `==`, `Equals`, `!=` or `NotEquals`.
    pub operator: String,
    /// Compared value.
    #[serde(default)]
    pub value: String,
}

/// Namespace scope of a kubernetes binding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceSelector {
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_selector: Option<NameSelector>,
    /// Namespaces by their labels (watched dynamically).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
}

// === impl HookConfig ===

impl HookConfig {
    /// An empty configuration; add bindings with the builder methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an `onStartup` binding.
    pub fn on_startup(mut self, order: u32) -> Self {
        self.on_startup = Some(order);
        self
    }

    /// Adds a `beforeHelm` binding.
    pub fn before_helm(mut self, order: u32) -> Self {
        self.before_helm = Some(order);
        self
    }

    /// Adds an `afterHelm` binding.
    pub fn after_helm(mut self, order: u32) -> Self {
        self.after_helm = Some(order);
        self
    }

    /// Adds a `beforeDeleteHelm` binding.
    pub fn before_delete_helm(mut self, order: u32) -> Self {
        self.before_delete_helm = Some(order);
        self
    }

    /// Adds an `afterDeleteHelm` binding.
    pub fn after_delete_helm(mut self, order: u32) -> Self {
        self.after_delete_helm = Some(order);
        self
    }

    /// Appends a kubernetes binding.
    pub fn kubernetes(mut self, binding: KubernetesBinding) -> Self {
        self.kubernetes.push(binding);
        self
    }

    /// Appends a schedule binding.
    pub fn schedule(mut self, binding: ScheduleBinding) -> Self {
        self.schedule.push(binding);
        self
    }

    /// Sets the rate limit.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// The `--config` answer of a shell hook (schema `module-hook-v1`).
    pub fn to_shell_json(&self) -> Value {
        let mut root = Map::new();
        root.insert("configVersion".into(), Value::from("v1"));
        if let Ok(Value::Object(fields)) = serde_json::to_value(self) {
            root.extend(fields);
        }
        if let Some(settings) = &self.settings {
            let mut s = Map::new();
            if let Some(interval) = settings.execution_min_interval {
                s.insert("executionMinInterval".into(), go_duration(interval).into());
            }
            if let Some(burst) = settings.execution_burst {
                s.insert("executionBurst".into(), burst.into());
            }
            root.insert("settings".into(), Value::Object(s));
        }
        Value::Object(root)
    }

    /// This hook as one entry of the batch `hook config` answer.
    ///
    /// Fails when the configuration uses something batch mode cannot express, because the framework
    /// would otherwise run the hook differently from what its author declared.
    pub fn to_batch(&self, name: &str, path: &str) -> Result<BatchHookConfig> {
        let not_expressible =
            |reason: String| Error::NotBatchExpressible { hook: name.to_owned(), reason };
        let mut schedule = Vec::with_capacity(self.schedule.len());
        for s in &self.schedule {
            if s.allow_failure.is_some() || !s.include_snapshots_from.is_empty() {
                return Err(not_expressible(format!(
                    "schedule {:?}: allowFailure and includeSnapshotsFrom do not exist in batch mode",
                    s.name
                )));
            }
            check_group(s.group.as_deref())
                .map_err(|r| not_expressible(format!("schedule {:?}: {r}", s.name)))?;
            schedule.push(BatchSchedule {
                name: Some(s.name.clone()),
                crontab: s.crontab.clone(),
                queue: s.queue.clone(),
            });
        }
        let mut kubernetes = Vec::with_capacity(self.kubernetes.len());
        for k in &self.kubernetes {
            check_group(k.group.as_deref())
                .map_err(|r| not_expressible(format!("kubernetes {:?}: {r}", k.name)))?;
            let execute_hook_on_event = match k.execute_hook_on_event.as_deref() {
                None => None,
                Some([]) => Some(false),
                Some(events) => {
                    let mut sorted = events.to_vec();
                    sorted.sort();
                    sorted.dedup();
                    if sorted != WatchEvent::ALL {
                        return Err(not_expressible(format!(
                            "kubernetes {:?}: executeHookOnEvent is all or nothing in batch mode",
                            k.name
                        )));
                    }
                    Some(true)
                }
            };
            kubernetes.push(BatchKubernetes {
                name: k.name.clone(),
                api_version: k.api_version.clone(),
                kind: Some(k.kind.clone()),
                name_selector: k.name_selector.clone(),
                namespace: k.namespace.clone(),
                label_selector: k.label_selector.clone(),
                field_selector: k.field_selector.clone(),
                execute_hook_on_event,
                execute_hook_on_synchronization: k.execute_hook_on_synchronization,
                wait_for_synchronization: k.wait_for_synchronization,
                keep_full_objects_in_memory: k.keep_full_objects_in_memory,
                jq_filter: k.jq_filter.clone(),
                allow_failure: k.allow_failure,
                resynchronization_period: k.resynchronization_period.clone(),
                include_snapshots_from: k.include_snapshots_from.clone(),
                queue: k.queue.clone(),
            });
        }
        Ok(BatchHookConfig {
            config_version: "v1".into(),
            metadata: BatchMetadata { name: name.to_owned(), path: path.to_owned() },
            schedule,
            kubernetes,
            on_startup: self.on_startup,
            before_helm: self.before_helm,
            after_helm: self.after_helm,
            before_delete_helm: self.before_delete_helm,
            after_delete_helm: self.after_delete_helm,
            allow_failure: None,
            settings: self.settings.map(|s| BatchSettings {
                execution_min_interval: s
                    .execution_min_interval
                    .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
                execution_burst: s.execution_burst,
            }),
            log_level: None,
        })
    }
}

impl ScheduleBinding {
    /// A schedule binding with a name and a crontab.
    pub fn new(name: impl Into<String>, crontab: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            crontab: crontab.into(),
            allow_failure: None,
            include_snapshots_from: Vec::new(),
            queue: None,
            group: None,
        }
    }
}

fn check_group(group: Option<&str>) -> std::result::Result<(), String> {
    match group {
        None | Some(BATCH_GROUP) => Ok(()),
        Some(other) => {
            Err(format!("group {other:?}: batch mode forces every binding into {BATCH_GROUP:?}"))
        }
    }
}

/// Formats a duration the way Go's `time.ParseDuration` reads it back.
fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

// === impl KubernetesBinding ===

impl KubernetesBinding {
    /// A binding watching every object of `kind` in `api_version`.
    pub fn new(
        name: impl Into<String>,
        api_version: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            api_version: Some(api_version.into()),
            kind: kind.into(),
            ..Self::default()
        }
    }

    /// Sets the jq filter whose result becomes `filterResult`.
    pub fn jq_filter(mut self, filter: impl Into<String>) -> Self {
        self.jq_filter = Some(filter.into());
        self
    }

    /// Watches only objects with these names.
    pub fn names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.name_selector =
            Some(NameSelector { match_names: names.into_iter().map(Into::into).collect() });
        self
    }

    /// Watches only objects whose labels match.
    pub fn labels(mut self, selector: LabelSelector) -> Self {
        self.label_selector = Some(selector);
        self
    }

    /// Adds a field requirement (`field operator value`).
    pub fn field(
        mut self,
        field: impl Into<String>,
        operator: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.field_selector.get_or_insert_with(FieldSelector::default).match_expressions.push(
            FieldSelectorExpression {
                field: field.into(),
                operator: operator.into(),
                value: value.into(),
            },
        );
        self
    }

    /// Watches only in the named namespaces.
    pub fn in_namespaces<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.namespace.get_or_insert_with(NamespaceSelector::default).name_selector =
            Some(NameSelector { match_names: names.into_iter().map(Into::into).collect() });
        self
    }

    /// Watches only in namespaces whose labels match.
    pub fn in_labelled_namespaces(mut self, selector: LabelSelector) -> Self {
        self.namespace.get_or_insert_with(NamespaceSelector::default).label_selector =
            Some(selector);
        self
    }

    /// Sets the events that run the hook (`[]` = snapshot only).
    pub fn on_events(mut self, events: impl IntoIterator<Item = WatchEvent>) -> Self {
        self.execute_hook_on_event = Some(events.into_iter().collect());
        self
    }

    /// Whether the initial list runs the hook.
    pub fn on_synchronization(mut self, run: bool) -> Self {
        self.execute_hook_on_synchronization = Some(run);
        self
    }

    /// Whether full objects are kept and sent.
    pub fn keep_full_objects(mut self, keep: bool) -> Self {
        self.keep_full_objects_in_memory = Some(keep);
        self
    }

    /// Sets the queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Sets the group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Adds bindings whose snapshots the contexts carry.
    pub fn include_snapshots_from<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Self {
        self.include_snapshots_from.extend(names.into_iter().map(Into::into));
        self
    }
}

impl LabelSelector {
    /// A selector requiring `key=value`.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.match_labels.insert(key.into(), value.into());
        self
    }

    /// A selector with one set-based requirement added.
    pub fn expression<S: Into<String>>(
        mut self,
        key: impl Into<String>,
        operator: impl Into<String>,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        self.match_expressions.push(LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: values.into_iter().map(Into::into).collect(),
        });
        self
    }
}

// === batch mode wire types ===

/// The whole `hook config` answer of a batch executable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchConfig {
    /// Always `v1`.
    pub version: String,
    /// Hooks by index (`hook run N`).
    pub hooks: Vec<BatchHookConfig>,
    /// Readiness hook (not used by this crate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<BatchHookConfig>,
    /// Whether `hook check` validates settings.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "has_settings_check")]
    pub has_settings_check: Option<bool>,
}

/// module-sdk's `HookConfig`: one hook of a batch executable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchHookConfig {
    /// Always `v1`.
    pub config_version: String,
    /// Hook identity.
    pub metadata: BatchMetadata,
    /// Schedule bindings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<BatchSchedule>,
    /// Kubernetes bindings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes: Vec<BatchKubernetes>,
    /// `onStartup` order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_startup: Option<u32>,
    /// `beforeHelm` order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_helm: Option<u32>,
    /// `afterHelm` order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_helm: Option<u32>,
    /// `beforeDeleteHelm` order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_delete_helm: Option<u32>,
    /// `afterDeleteHelm` order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_delete_helm: Option<u32>,
    /// Hook-level allowFailure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_failure: Option<bool>,
    /// Rate limit, interval in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<BatchSettings>,
    /// Log level of the hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
}

/// `metadata` of a batch hook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchMetadata {
    /// Hook name (part of the framework's hook name `<path>:<name>:<index>`).
    pub name: String,
    /// Hook path.
    pub path: String,
}

/// Rate limit in batch form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchSettings {
    /// Go `time.Duration`: nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_min_interval: Option<u64>,
    /// Burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_burst: Option<u32>,
}

/// A schedule binding in batch form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchSchedule {
    /// Binding name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Crontab.
    pub crontab: String,
    /// Queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

/// A kubernetes binding in batch form (`executeHookOnEvent` is a boolean here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchKubernetes {
    /// Binding name.
    pub name: String,
    /// apiVersion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_selector: Option<NameSelector>,
    /// Namespace scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<NamespaceSelector>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// Fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<FieldSelector>,
    /// `false` = snapshot only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_hook_on_event: Option<bool>,
    /// Run on the initial list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_hook_on_synchronization: Option<bool>,
    /// Module start waits for the Synchronization run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_synchronization: Option<bool>,
    /// Keep full objects (default false in batch mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_full_objects_in_memory: Option<bool>,
    /// jq filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jq_filter: Option<String>,
    /// Binding-level allowFailure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_failure: Option<bool>,
    /// Relist period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resynchronization_period: Option<String>,
    /// Extra snapshots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_snapshots_from: Vec<String>,
    /// Queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> HookConfig {
        HookConfig::new()
            .before_helm(10)
            .schedule(ScheduleBinding {
                allow_failure: Some(true),
                include_snapshots_from: vec!["nodes".into()],
                queue: Some("/modules/my-module/cleanup".into()),
                ..ScheduleBinding::new("cleanup", "*/15 * * * *")
            })
            .kubernetes(
                KubernetesBinding::new("nodes", "v1", "Node")
                    .labels(LabelSelector::default().expression(
                        "node-role.kubernetes.io/control-plane",
                        "Exists",
                        Vec::<String>::new(),
                    ))
                    .jq_filter(".metadata.name")
                    .on_synchronization(true),
            )
            .kubernetes(
                KubernetesBinding::new("cm", "v1", "ConfigMap")
                    .in_namespaces(["d8-my-module"])
                    .names(["my-settings"])
                    .field("metadata.namespace", "=", "d8-my-module")
                    .jq_filter(".data")
                    .on_events([])
                    .on_synchronization(false)
                    .keep_full_objects(false)
                    .group("g"),
            )
            .settings(Settings {
                execution_min_interval: Some(Duration::from_secs(5)),
                execution_burst: Some(1),
            })
    }

    #[test]
    fn shell_json_golden() {
        assert_eq!(
            example().to_shell_json().to_string(),
            r#"{"configVersion":"v1","beforeHelm":10,"schedule":[{"name":"cleanup","crontab":"*/15 * * * *","allowFailure":true,"includeSnapshotsFrom":["nodes"],"queue":"/modules/my-module/cleanup"}],"kubernetes":[{"name":"nodes","apiVersion":"v1","kind":"Node","labelSelector":{"matchExpressions":[{"key":"node-role.kubernetes.io/control-plane","operator":"Exists"}]},"jqFilter":".metadata.name","executeHookOnSynchronization":true},{"name":"cm","apiVersion":"v1","kind":"ConfigMap","nameSelector":{"matchNames":["my-settings"]},"fieldSelector":{"matchExpressions":[{"field":"metadata.namespace","operator":"=","value":"d8-my-module"}]},"namespace":{"nameSelector":{"matchNames":["d8-my-module"]}},"jqFilter":".data","executeHookOnEvent":[],"executeHookOnSynchronization":false,"keepFullObjectsInMemory":false,"group":"g"}],"settings":{"executionMinInterval":"5s","executionBurst":1}}"#
        );
    }

    #[test]
    fn empty_arrays_are_omitted() {
        assert_eq!(
            HookConfig::new().on_startup(1).to_shell_json().to_string(),
            r#"{"configVersion":"v1","onStartup":1}"#
        );
    }

    #[test]
    fn batch_golden() {
        let cfg = HookConfig::new()
            .on_startup(1)
            .after_delete_helm(2)
            .schedule(ScheduleBinding::new("tick", "*/5 * * * *"))
            .kubernetes(
                KubernetesBinding::new("nodes", "v1", "Node")
                    .on_events([])
                    .group(BATCH_GROUP)
                    .keep_full_objects(true),
            )
            .kubernetes(KubernetesBinding::new("pods", "v1", "Pod").on_events(WatchEvent::ALL))
            .settings(Settings {
                execution_min_interval: Some(Duration::from_millis(1500)),
                execution_burst: None,
            });
        let batch = cfg.to_batch("nodes", "hooks/nodes").unwrap();
        assert_eq!(
            serde_json::to_string(&batch).unwrap(),
            r#"{"configVersion":"v1","metadata":{"name":"nodes","path":"hooks/nodes"},"schedule":[{"name":"tick","crontab":"*/5 * * * *"}],"kubernetes":[{"name":"nodes","apiVersion":"v1","kind":"Node","executeHookOnEvent":false,"keepFullObjectsInMemory":true},{"name":"pods","apiVersion":"v1","kind":"Pod","executeHookOnEvent":true}],"onStartup":1,"afterDeleteHelm":2,"settings":{"executionMinInterval":1500000000}}"#
        );
        let back: BatchHookConfig =
            serde_json::from_str(&serde_json::to_string(&batch).unwrap()).unwrap();
        assert_eq!(back, batch);
    }

    #[test]
    fn batch_rejects_what_it_cannot_express() {
        let err = example().to_batch("x", "x").unwrap_err().to_string();
        assert!(err.contains("allowFailure and includeSnapshotsFrom"), "{err}");
        let partial = HookConfig::new()
            .kubernetes(KubernetesBinding::new("n", "v1", "Node").on_events([WatchEvent::Added]));
        assert!(partial.to_batch("x", "x").unwrap_err().to_string().contains("all or nothing"));
    }

    #[test]
    fn batch_parse_rejects_unknown_keys() {
        let err =
            serde_json::from_str::<BatchKubernetes>(r#"{"name":"n","kind":"Node","mode":"v1"}"#)
                .unwrap_err()
                .to_string();
        assert!(err.starts_with("unknown field `mode`"), "{err}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(90)), "90s");
        assert_eq!(go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(go_duration(Duration::from_nanos(7)), "7ns");
    }
}
