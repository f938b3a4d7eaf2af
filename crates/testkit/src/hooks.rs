//! Hook definitions as the framework registers them, and the binding contexts it builds.
//!
//! A batch executable's `hook config` answer is converted the way addon-operator converts it
//! (`reference/addon-operator.md` §8): every kubernetes and schedule binding is forced into group
//! `main`, `keepFullObjectsInMemory` defaults to false, `executeHookOnEvent: false` means `[]`.
//! Unlike the Go decoder, unknown keys are rejected: the shell-hook schema is strict, and a key the
//! framework silently drops is a hook bug either way.
//!
//! Contexts follow `MapV1` (§2.4): key presence rules, `objects` for Synchronization, `snapshots`
//! only with an effective `includeSnapshotsFrom` (own list plus the group's bindings), all snapshots
//! for `*Helm` contexts, and group compaction (a context is dropped when the next one has the same
//! non-empty group).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use addon::config::{BATCH_GROUP, BatchConfig, BatchHookConfig};
use addon::{
    BindingContext, BindingType, HookConfig, KubernetesBinding, ScheduleBinding, SnapshotItem,
    WatchEvent,
};

use crate::{Error, Result};

/// One registered hook.
#[derive(Clone, Debug, PartialEq)]
pub struct HookDef {
    /// Position in the batch (`hook run N`).
    pub index: usize,
    /// The framework's hook name `<path>:<metadata.name>:<index>`, also the default metric group.
    pub name: String,
    /// `metadata.name`.
    pub short_name: String,
    /// Bindings after the framework's conversion.
    pub config: HookConfig,
}

impl HookDef {
    /// Effective `keepFullObjectsInMemory` of a kubernetes binding (batch default: false).
    pub fn keeps_full_objects(binding: &KubernetesBinding) -> bool {
        binding.keep_full_objects_in_memory.unwrap_or(false)
    }

    /// Whether an event type runs the hook for this binding.
    pub fn runs_on(binding: &KubernetesBinding, event: WatchEvent) -> bool {
        binding.execute_hook_on_event.as_ref().is_none_or(|events| events.contains(&event))
    }

    /// Bindings whose snapshots a context of `binding`/`group` carries.
    fn effective_includes(&self, own: &[String], group: Option<&str>) -> Vec<String> {
        let mut names: Vec<String> = own.to_vec();
        if let Some(g) = group {
            for k in &self.config.kubernetes {
                if k.group.as_deref() == Some(g) && !names.contains(&k.name) {
                    names.push(k.name.clone());
                }
            }
        }
        names
    }
}

/// Parses and validates a `hook config` answer.
pub fn parse_batch_config(text: &str, module: &str, executable: &str) -> Result<Vec<HookDef>> {
    let invalid = |name: &str, reason: String| Error::HookConfig {
        module: module.to_owned(),
        hook: name.to_owned(),
        reason,
    };
    let config: BatchConfig =
        serde_json::from_str(text).map_err(|e| invalid(executable, e.to_string()))?;
    if config.version != "v1" {
        return Err(invalid(
            executable,
            format!("unsupported batch config version {:?}", config.version),
        ));
    }
    config
        .hooks
        .into_iter()
        .enumerate()
        .map(|(index, hook)| {
            let name = format!("{executable}:{}:{index}", hook.metadata.name);
            let short_name = hook.metadata.name.clone();
            let config = convert(hook).map_err(|reason| invalid(&name, reason))?;
            Ok(HookDef { index, name, short_name, config })
        })
        .collect()
}

fn convert(hook: BatchHookConfig) -> std::result::Result<HookConfig, String> {
    if hook.config_version != "v1" {
        return Err(format!("configVersion {:?} is not v1", hook.config_version));
    }
    let mut config = HookConfig {
        on_startup: hook.on_startup,
        before_helm: hook.before_helm,
        after_helm: hook.after_helm,
        before_delete_helm: hook.before_delete_helm,
        after_delete_helm: hook.after_delete_helm,
        settings: hook.settings.map(|s| addon::Settings {
            execution_min_interval: s.execution_min_interval.map(Duration::from_nanos),
            execution_burst: s.execution_burst,
        }),
        ..HookConfig::default()
    };
    for s in hook.schedule {
        let name = s.name.unwrap_or_else(|| "schedule".into());
        if s.crontab.split_whitespace().count() != 5 && s.crontab.split_whitespace().count() != 6 {
            return Err(format!(
                "schedule {name:?}: crontab {:?} must have 5 or 6 fields",
                s.crontab
            ));
        }
        config.schedule.push(ScheduleBinding {
            queue: s.queue,
            group: Some(BATCH_GROUP.into()),
            ..ScheduleBinding::new(name, s.crontab)
        });
    }
    let mut names = BTreeSet::new();
    for k in &hook.kubernetes {
        if !names.insert(k.name.clone()) {
            return Err(format!("kubernetes binding name {:?} is not unique", k.name));
        }
    }
    for k in hook.kubernetes {
        let kind = k
            .kind
            .filter(|k| !k.is_empty())
            .ok_or_else(|| format!("kubernetes {:?}: kind is required", k.name))?;
        for inc in &k.include_snapshots_from {
            if !names.contains(inc) {
                return Err(format!(
                    "kubernetes {:?}: includeSnapshotsFrom {inc:?} is not a kubernetes binding",
                    k.name
                ));
            }
        }
        for sel in [
            k.label_selector.as_ref(),
            k.namespace.as_ref().and_then(|n| n.label_selector.as_ref()),
        ]
        .into_iter()
        .flatten()
        {
            for e in &sel.match_expressions {
                let ok = match e.operator.as_str() {
                    "In" | "NotIn" => !e.values.is_empty(),
                    "Exists" | "DoesNotExist" => e.values.is_empty(),
                    _ => false,
                };
                if !ok {
                    return Err(format!(
                        "kubernetes {:?}: invalid label selector requirement {e:?}",
                        k.name
                    ));
                }
            }
        }
        if let Some(fs) = &k.field_selector {
            for e in &fs.match_expressions {
                if !matches!(e.operator.as_str(), "=" | "==" | "Equals" | "!=" | "NotEquals") {
                    return Err(format!(
                        "kubernetes {:?}: field selector operator {:?} is invalid",
                        k.name, e.operator
                    ));
                }
                if e.field == "metadata.name" && k.name_selector.is_some() {
                    return Err(format!(
                        "kubernetes {:?}: metadata.name field selector conflicts with nameSelector",
                        k.name
                    ));
                }
            }
        }
        config.kubernetes.push(KubernetesBinding {
            name: k.name,
            api_version: k.api_version,
            kind,
            name_selector: k.name_selector,
            label_selector: k.label_selector,
            field_selector: k.field_selector,
            namespace: k.namespace,
            jq_filter: k.jq_filter.filter(|f| !f.is_empty()),
            execute_hook_on_event: match k.execute_hook_on_event {
                Some(false) => Some(Vec::new()),
                _ => None,
            },
            execute_hook_on_synchronization: Some(
                k.execute_hook_on_synchronization.unwrap_or(true),
            ),
            wait_for_synchronization: Some(k.wait_for_synchronization.unwrap_or(true)),
            keep_full_objects_in_memory: Some(k.keep_full_objects_in_memory.unwrap_or(false)),
            allow_failure: k.allow_failure,
            resynchronization_period: k.resynchronization_period,
            include_snapshots_from: k.include_snapshots_from,
            queue: k.queue,
            group: Some(BATCH_GROUP.into()),
        });
    }
    if config.on_startup.is_none()
        && config.before_helm.is_none()
        && config.after_helm.is_none()
        && config.before_delete_helm.is_none()
        && config.after_delete_helm.is_none()
        && config.schedule.is_empty()
        && config.kubernetes.is_empty()
    {
        return Err("a hook needs at least one binding".into());
    }
    Ok(config)
}

/// Why a hook runs: one queued task.
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    /// `onStartup`.
    OnStartup,
    /// `beforeHelm`, `afterHelm`, `beforeDeleteHelm`, `afterDeleteHelm`.
    Lifecycle(&'static str),
    /// Initial list of a kubernetes binding.
    Synchronization(String),
    /// A watch event of a kubernetes binding.
    Event {
        /// Binding name.
        binding: String,
        /// Event type.
        event: WatchEvent,
        /// Object/filter result at event time.
        item: SnapshotItem,
    },
    /// A schedule binding fired.
    Schedule(String),
}

/// Builds the contexts of one run from combined tasks, with snapshots read now, then compacts
/// same-group runs.
pub fn build_contexts(
    hook: &HookDef,
    tasks: &[Task],
    snapshots: &BTreeMap<String, Vec<SnapshotItem>>,
) -> Vec<BindingContext> {
    let pick = |names: &[String]| -> Option<BTreeMap<String, Vec<SnapshotItem>>> {
        (!names.is_empty()).then(|| {
            names
                .iter()
                .map(|n| (n.clone(), snapshots.get(n).cloned().unwrap_or_default()))
                .collect()
        })
    };
    let mut contexts: Vec<BindingContext> = Vec::new();
    for task in tasks {
        let ctx = match task {
            Task::OnStartup => BindingContext::lifecycle("onStartup"),
            Task::Lifecycle(name) => BindingContext {
                snapshots: Some(
                    hook.config
                        .kubernetes
                        .iter()
                        .map(|k| {
                            (k.name.clone(), snapshots.get(&k.name).cloned().unwrap_or_default())
                        })
                        .collect(),
                ),
                ..BindingContext::lifecycle(*name)
            },
            Task::Schedule(name) => {
                let Some(s) = hook.config.schedule.iter().find(|s| &s.name == name) else {
                    continue;
                };
                let includes =
                    hook.effective_includes(&s.include_snapshots_from, s.group.as_deref());
                kube_or_group(name, s.group.as_deref(), BindingType::Schedule, pick(&includes))
            }
            Task::Synchronization(name) | Task::Event { binding: name, .. } => {
                let Some(k) = hook.config.kubernetes.iter().find(|k| &k.name == name) else {
                    continue;
                };
                let includes =
                    hook.effective_includes(&k.include_snapshots_from, k.group.as_deref());
                let mut ctx = match task {
                    Task::Synchronization(_) => {
                        let mut ctx = kube_or_group(
                            name,
                            k.group.as_deref(),
                            BindingType::Synchronization,
                            pick(&includes),
                        );
                        if ctx.binding_type == Some(BindingType::Synchronization) {
                            ctx.objects = Some(snapshots.get(name).cloned().unwrap_or_default());
                        }
                        ctx
                    }
                    _ => {
                        kube_or_group(name, k.group.as_deref(), BindingType::Event, pick(&includes))
                    }
                };
                if let (Task::Event { event, item, .. }, Some(BindingType::Event)) =
                    (task, ctx.binding_type)
                {
                    ctx.watch_event = Some(*event);
                    ctx.object = item.object.clone();
                    ctx.filter_result = item.filter_result.clone();
                }
                ctx
            }
        };
        contexts.push(ctx);
    }
    compact(contexts)
}

fn kube_or_group(
    binding: &str,
    group: Option<&str>,
    binding_type: BindingType,
    snapshots: Option<BTreeMap<String, Vec<SnapshotItem>>>,
) -> BindingContext {
    match group {
        Some(g) => BindingContext {
            binding: binding.to_owned(),
            binding_type: Some(BindingType::Group),
            group_name: Some(g.to_owned()),
            snapshots: Some(snapshots.unwrap_or_default()),
            ..BindingContext::default()
        },
        None => BindingContext {
            binding: binding.to_owned(),
            binding_type: Some(binding_type),
            snapshots,
            ..BindingContext::default()
        },
    }
}

/// Drops every context whose successor has the same non-empty group.
pub fn compact(contexts: Vec<BindingContext>) -> Vec<BindingContext> {
    let mut out: Vec<BindingContext> = Vec::with_capacity(contexts.len());
    for ctx in contexts {
        if let Some(last) = out.last()
            && last.group_name.is_some()
            && last.group_name == ctx.group_name
        {
            out.pop();
        }
        out.push(ctx);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shell_hook() -> HookDef {
        HookDef {
            index: 0,
            name: "hooks/x".into(),
            short_name: "x".into(),
            config: HookConfig::new()
                .before_helm(1)
                .kubernetes(
                    KubernetesBinding::new("nodes", "v1", "Node")
                        .jq_filter(".metadata.name")
                        .include_snapshots_from(["cm"]),
                )
                .kubernetes(KubernetesBinding::new("cm", "v1", "ConfigMap"))
                .kubernetes(KubernetesBinding::new("pods", "v1", "Pod").group("pods"))
                .schedule(ScheduleBinding::new("tick", "* * * * *")),
        }
    }

    fn snaps() -> BTreeMap<String, Vec<SnapshotItem>> {
        let item =
            |v: serde_json::Value| SnapshotItem { filter_result: Some(v.into()), object: None };
        [
            ("nodes".to_owned(), vec![item(json!("n1"))]),
            (
                "cm".to_owned(),
                vec![SnapshotItem {
                    filter_result: None,
                    object: Some(json!({"kind": "ConfigMap"}).into()),
                }],
            ),
            ("pods".to_owned(), vec![]),
        ]
        .into()
    }

    fn golden(tasks: &[Task]) -> String {
        serde_json::to_string(&build_contexts(&shell_hook(), tasks, &snaps())).unwrap()
    }

    #[test]
    fn golden_shapes() {
        assert_eq!(golden(&[Task::OnStartup]), r#"[{"binding":"onStartup"}]"#);
        assert_eq!(
            golden(&[Task::Lifecycle("beforeHelm")]),
            r#"[{"binding":"beforeHelm","snapshots":{"cm":[{"object":{"kind":"ConfigMap"}}],"nodes":[{"filterResult":"n1"}],"pods":[]}}]"#
        );
        assert_eq!(
            golden(&[Task::Synchronization("nodes".into()), Task::Synchronization("cm".into())]),
            r#"[{"binding":"nodes","objects":[{"filterResult":"n1"}],"snapshots":{"cm":[{"object":{"kind":"ConfigMap"}}]},"type":"Synchronization"},{"binding":"cm","objects":[{"object":{"kind":"ConfigMap"}}],"type":"Synchronization"}]"#
        );
        assert_eq!(
            golden(&[Task::Event {
                binding: "nodes".into(),
                event: WatchEvent::Deleted,
                item: SnapshotItem { filter_result: Some(addon::RawJson::null()), object: None },
            }]),
            r#"[{"binding":"nodes","filterResult":null,"snapshots":{"cm":[{"object":{"kind":"ConfigMap"}}]},"type":"Event","watchEvent":"Deleted"}]"#
        );
        assert_eq!(
            golden(&[Task::Schedule("tick".into())]),
            r#"[{"binding":"tick","type":"Schedule"}]"#
        );
        assert_eq!(
            golden(&[Task::Synchronization("pods".into())]),
            r#"[{"binding":"pods","groupName":"pods","snapshots":{"pods":[]},"type":"Group"}]"#
        );
    }

    #[test]
    fn group_compaction_keeps_the_last_of_a_run() {
        let pods_event = Task::Event {
            binding: "pods".into(),
            event: WatchEvent::Added,
            item: SnapshotItem::default(),
        };
        let ctx = build_contexts(
            &shell_hook(),
            &[
                Task::Synchronization("pods".into()),
                pods_event.clone(),
                Task::Schedule("tick".into()),
                pods_event,
            ],
            &snaps(),
        );
        let kinds: Vec<_> = ctx.iter().map(|c| (c.binding.as_str(), c.binding_type)).collect();
        assert_eq!(
            kinds,
            vec![
                ("pods", Some(BindingType::Group)),
                ("tick", Some(BindingType::Schedule)),
                ("pods", Some(BindingType::Group))
            ]
        );
    }

    #[test]
    fn batch_conversion_forces_group_main() {
        let text = r#"{"version":"v1","hooks":[{"configVersion":"v1","metadata":{"name":"a","path":"a"},
            "kubernetes":[{"name":"nodes","apiVersion":"v1","kind":"Node","jqFilter":".metadata.name"},
                          {"name":"cm","kind":"ConfigMap","executeHookOnEvent":false}],
            "schedule":[{"crontab":"*/5 * * * *"}]}]}"#;
        let hooks = parse_batch_config(text, "my-module", "hooks/batchhooks").unwrap();
        let hook = &hooks[0];
        assert_eq!(hook.name, "hooks/batchhooks:a:0");
        assert!(hook.config.kubernetes.iter().all(|k| k.group.as_deref() == Some("main")));
        assert_eq!(hook.config.kubernetes[1].execute_hook_on_event, Some(vec![]));
        assert!(!HookDef::keeps_full_objects(&hook.config.kubernetes[0]));
        assert_eq!(hook.config.schedule[0].name, "schedule");
        let ctx = build_contexts(hook, &[Task::Schedule("schedule".into())], &BTreeMap::new());
        assert_eq!(
            serde_json::to_string(&ctx).unwrap(),
            r#"[{"binding":"schedule","groupName":"main","snapshots":{"cm":[],"nodes":[]},"type":"Group"}]"#
        );
    }

    #[test]
    fn invalid_configs_are_rejected_with_the_framework_error() {
        let cases = [
            (
                r#"{"version":"v1","hooks":[{"configVersion":"v1","metadata":{"name":"a","path":"a"},"kubernetes":[{"name":"n","kind":"Node","mode":"v0"}]}]}"#,
                "unknown field `mode`",
            ),
            (
                r#"{"version":"v1","hooks":[{"configVersion":"v1","metadata":{"name":"a","path":"a"}}]}"#,
                "at least one binding",
            ),
            (
                r#"{"version":"v1","hooks":[{"configVersion":"v1","metadata":{"name":"a","path":"a"},"kubernetes":[{"name":"n"}]}]}"#,
                "kind is required",
            ),
            (
                r#"{"version":"v1","hooks":[{"configVersion":"v1","metadata":{"name":"a","path":"a"},"kubernetes":[{"name":"n","kind":"Node","includeSnapshotsFrom":["x"]}]}]}"#,
                "includeSnapshotsFrom",
            ),
            (
                r#"{"version":"v1","hooks":[{"configVersion":"v1","metadata":{"name":"a","path":"a"},"kubernetes":[{"name":"n","kind":"Node","labelSelector":{"matchExpressions":[{"key":"k","operator":"Exists","values":["x"]}]}}]}]}"#,
                "label selector",
            ),
            (
                r#"{"version":"v1","hooks":[{"configVersion":"v1","metadata":{"name":"a","path":"a"},"schedule":[{"crontab":"bad"}]}]}"#,
                "5 or 6 fields",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_batch_config(text, "my-module", "hooks/b").unwrap_err().to_string();
            assert!(err.starts_with(r#""my-module" module hook "#), "{err}");
            assert!(err.contains("--config invalid: "), "{err}");
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
