//! The framework driver: spawns the hook executable and applies its outputs.
//!
//! Per run (`reference/addon-operator.md` §2.1–2.3): binding contexts with snapshots read at run
//! time, `{"global":..,"<key>":..}` values files, pre-created empty output files, `hook run N` with
//! `env_clear()` plus `PATH`, the file variables and `MODULE_NAME`. A non-zero exit applies nothing.
//! Otherwise outputs are parsed (any error fails the run), metrics applied, Kubernetes operations
//! executed (a failure stops here: values are not applied), the config values patch rejected if it
//! changes anything (Deckhouse forbids it), and the values patch checked, applied strictly and
//! validated.
//!
//! Lifecycle ([`Framework::start`]): `onStartup` hooks → monitors start (initial list) → one
//! combined Synchronization run per hook → `beforeHelm` → `afterHelm` → [`Framework::run_until_quiet`].
//! Helm itself is not rendered. A failed run is returned to the test, unless the test asks for
//! the framework's retries ([`Framework::with_retries`]): then the same tasks run again at once,
//! as the framework does after its backoff (the time between is not emulated). Not emulated:
//! queues other than one FIFO, `allowFailure`, rate-limit settings, cron timing (tests fire
//! schedules with [`Framework::run_schedule`]).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

use addon::{PatchOp, WatchEvent};
use serde_json::{Map, Value, json};

use crate::cluster::FakeCluster;
use crate::hooks::{self, HookDef, Task};
use crate::metrics::{self, MetricStore};
use crate::monitor::Monitor;
use crate::ops::{self, OperationSpec};
use crate::values::{self, ValuesSchema};
use crate::{Error, Result};

/// Default cap of [`Framework::run_until_quiet`]: a hook that keeps re-triggering itself is a bug.
pub const DEFAULT_MAX_ROUNDS: usize = 10;

/// The content of a hook's output files, as read after it exited 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawOutputs {
    /// `VALUES_JSON_PATCH_PATH`.
    pub values_patch: String,
    /// `CONFIG_VALUES_JSON_PATCH_PATH`.
    pub config_values_patch: String,
    /// `KUBERNETES_PATCH_PATH`.
    pub kubernetes: String,
    /// `METRICS_PATH`.
    pub metrics: String,
}

/// What one hook run saw and did.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    /// The framework's hook name.
    pub hook: String,
    /// The binding contexts it received.
    pub contexts: Value,
    /// Its stderr (JSON log lines).
    pub stderr: String,
    /// Accepted values patch.
    pub values_patch: Vec<PatchOp>,
    /// Executed Kubernetes operations.
    pub kubernetes: Vec<OperationSpec>,
    /// Whether module values changed.
    pub values_changed: bool,
}

/// The emulated framework around one module's batch hook executable.
#[derive(Debug)]
pub struct Framework {
    binary: PathBuf,
    module: String,
    values_key: String,
    executable_name: String,
    hooks: Vec<HookDef>,
    monitors: Vec<Vec<Monitor>>,
    queue: VecDeque<(usize, Task)>,
    cluster: FakeCluster,
    values: Value,
    global_values: Value,
    config_values: Value,
    schema: Option<ValuesSchema>,
    metrics: MetricStore,
    runs: Vec<RunRecord>,
    /// Runs that failed and were retried, with their error.
    failures: Vec<String>,
    max_rounds: usize,
    max_retries: usize,
    tmp: tempfile::TempDir,
}

impl Framework {
    /// Registers the hooks of a batch executable: probes `hook list` with an empty environment,
    /// then parses and validates `hook config`.
    pub fn new(binary: impl AsRef<Path>, module: &str) -> Result<Self> {
        let binary = binary.as_ref().to_path_buf();
        let executable_name = "hooks/batchhooks".to_owned();
        let list = Self::exec(&binary, &["hook", "list"], &[])?;
        let listed = list
            .strip_prefix("Found ")
            .and_then(|rest| rest.split_once(" items"))
            .and_then(|(n, _)| n.parse::<usize>().ok())
            .filter(|n| (1..10_000).contains(n));
        let Some(count) = listed else {
            return Err(Error::NotBatch { path: binary, stdout: list });
        };
        let config = Self::exec(&binary, &["hook", "config"], &[("PATH", path_var())])?;
        let hooks = hooks::parse_batch_config(&config, module, &executable_name)?;
        if hooks.len() != count {
            return Err(Error::HookConfig {
                module: module.to_owned(),
                hook: executable_name,
                reason: format!(
                    "`hook list` announced {count} hooks, `hook config` has {}",
                    hooks.len()
                ),
            });
        }
        Ok(Self {
            monitors: vec![Vec::new(); hooks.len()],
            binary,
            module: module.to_owned(),
            values_key: addon::values_key(module),
            executable_name,
            hooks,
            queue: VecDeque::new(),
            cluster: FakeCluster::new(),
            values: json!({}),
            global_values: json!({}),
            config_values: json!({}),
            schema: None,
            metrics: MetricStore::default(),
            runs: Vec::new(),
            max_rounds: DEFAULT_MAX_ROUNDS,
            failures: Vec::new(),
            max_retries: 0,
            tmp: tempfile::tempdir().map_err(|source| Error::Io {
                action: "create",
                path: "tmp".into(),
                source,
            })?,
        })
    }

    fn exec(binary: &Path, args: &[&str], env: &[(&str, String)]) -> Result<String> {
        let out = Command::new(binary)
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .output()
            .map_err(|source| Error::Spawn { path: binary.into(), source })?;
        if !out.status.success() {
            return Err(Error::HookFailed {
                hook: format!("{} {}", binary.display(), args.join(" ")),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Validates values against `openapi/values.yaml` (+ `config-values.yaml`) of this directory.
    pub fn with_openapi_dir(mut self, dir: impl AsRef<Path>) -> Result<Self> {
        self.schema = Some(ValuesSchema::load(dir.as_ref())?);
        Ok(self)
    }

    /// Uses a prepared schema.
    pub fn with_schema(mut self, schema: ValuesSchema) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Changes the round cap of [`Self::run_until_quiet`].
    pub fn with_max_rounds(mut self, rounds: usize) -> Self {
        self.max_rounds = rounds;
        self
    }

    /// Registered hooks.
    pub fn hooks(&self) -> &[HookDef] {
        &self.hooks
    }

    /// The values key (`myModule`).
    pub fn values_key(&self) -> &str {
        &self.values_key
    }

    /// The fake cluster.
    pub fn cluster(&self) -> &FakeCluster {
        &self.cluster
    }

    /// The fake cluster, for fixture changes between runs.
    pub fn cluster_mut(&mut self) -> &mut FakeCluster {
        &mut self.cluster
    }

    /// Module values.
    pub fn values(&self) -> &Value {
        &self.values
    }

    /// A module value by dot path (`internal.nodes`).
    pub fn value(&self, path: &str) -> Option<&Value> {
        path.split('.').try_fold(&self.values, |v, k| v.get(k))
    }

    /// Replaces module values (before [`Self::start`], or between runs).
    pub fn set_values(&mut self, values: Value) {
        self.values = values;
    }

    /// Replaces module config values (the user's settings).
    pub fn set_config_values(&mut self, config_values: Value) {
        self.config_values = config_values;
    }

    /// Replaces global values.
    pub fn set_global_values(&mut self, global: Value) {
        self.global_values = global;
    }

    /// Stored metrics.
    pub fn metrics(&self) -> &MetricStore {
        &self.metrics
    }

    /// Every run so far.
    pub fn runs(&self) -> &[RunRecord] {
        &self.runs
    }

    /// A full module start: defaults and validation of values, `onStartup`, monitors and
    /// Synchronization, `beforeHelm`/`afterHelm`, then [`Self::run_until_quiet`].
    pub fn start(&mut self) -> Result<usize> {
        if let Some(schema) = &self.schema {
            schema.validate_config(&self.config_values)?;
            schema.apply_defaults(&mut self.values);
            schema.validate(&self.values)?;
        }
        self.run_lifecycle_binding("onStartup")?;
        self.start_monitors()?;
        for hook in 0..self.hooks.len() {
            let tasks: Vec<Task> = self.hooks[hook]
                .config
                .kubernetes
                .iter()
                .filter(|k| k.execute_hook_on_synchronization != Some(false))
                .map(|k| Task::Synchronization(k.name.clone()))
                .collect();
            if !tasks.is_empty() {
                self.run_tasks(hook, &tasks)?;
            }
        }
        let mut again = self.module_run()?;
        let mut rounds = 0;
        while again && rounds < self.max_rounds {
            again = self.module_run()?;
            rounds += 1;
        }
        self.run_until_quiet()
    }

    /// Starts every monitor with an initial list (no events: the Synchronization run covers it).
    pub fn start_monitors(&mut self) -> Result<()> {
        for (i, hook) in self.hooks.iter().enumerate() {
            self.monitors[i] = hook
                .config
                .kubernetes
                .iter()
                .map(|k| Monitor::new(k.clone(), HookDef::keeps_full_objects(k)))
                .collect();
            for m in &mut self.monitors[i] {
                m.resync(&self.cluster)?;
            }
        }
        Ok(())
    }

    /// `beforeHelm` then `afterHelm` hooks; returns whether `afterHelm` changed values (which makes
    /// the framework run the module again).
    pub fn module_run(&mut self) -> Result<bool> {
        self.run_lifecycle_binding("beforeHelm")?;
        self.run_lifecycle_binding("afterHelm")
    }

    /// Runs every hook with a lifecycle binding (`onStartup`, `beforeHelm`, `afterHelm`,
    /// `beforeDeleteHelm`, `afterDeleteHelm`) by order, then name; returns whether values changed.
    pub fn run_lifecycle_binding(&mut self, binding: &str) -> Result<bool> {
        let (binding, order_of): (&'static str, fn(&addon::HookConfig) -> Option<u32>) =
            match binding {
                "onStartup" => ("onStartup", |c| c.on_startup),
                "beforeHelm" => ("beforeHelm", |c| c.before_helm),
                "afterHelm" => ("afterHelm", |c| c.after_helm),
                "beforeDeleteHelm" => ("beforeDeleteHelm", |c| c.before_delete_helm),
                "afterDeleteHelm" => ("afterDeleteHelm", |c| c.after_delete_helm),
                other => return Err(Error::NoSuchBinding(other.to_owned())),
            };
        let mut selected: Vec<(u32, String, usize)> = self
            .hooks
            .iter()
            .filter_map(|h| order_of(&h.config).map(|o| (o, h.name.clone(), h.index)))
            .collect();
        selected.sort();
        let mut changed = false;
        for (_, _, hook) in selected {
            let task =
                if binding == "onStartup" { Task::OnStartup } else { Task::Lifecycle(binding) };
            changed |= self.run_tasks(hook, &[task])?.values_changed;
        }
        Ok(changed)
    }

    /// Fires the schedule binding `name` of every hook that has it.
    pub fn run_schedule(&mut self, name: &str) -> Result<()> {
        let targets: Vec<usize> = self
            .hooks
            .iter()
            .filter(|h| h.config.schedule.iter().any(|s| s.name == name))
            .map(|h| h.index)
            .collect();
        if targets.is_empty() {
            return Err(Error::NoSuchBinding(name.to_owned()));
        }
        for hook in targets {
            self.run_tasks(hook, &[Task::Schedule(name.to_owned())])?;
        }
        Ok(())
    }

    /// Feeds cluster changes back as events and runs hooks until nothing is left to do; values
    /// changes by event runs trigger a module run (`beforeHelm`/`afterHelm`), as in the framework.
    /// Returns the number of rounds that ran; exceeding the cap is an error.
    pub fn run_until_quiet(&mut self) -> Result<usize> {
        let mut module_run_pending = false;
        for round in 0..self.max_rounds {
            self.enqueue_events()?;
            if self.queue.is_empty() && !module_run_pending {
                return Ok(round);
            }
            while let Some((hook, first)) = self.queue.pop_front() {
                let mut tasks = vec![first];
                while self.queue.front().is_some_and(|(h, _)| *h == hook) {
                    if let Some((_, t)) = self.queue.pop_front() {
                        tasks.push(t);
                    }
                }
                module_run_pending |= self.run_tasks(hook, &tasks)?.values_changed;
            }
            if module_run_pending {
                module_run_pending = self.module_run()?;
            }
        }
        self.enqueue_events()?;
        let mut pending: Vec<String> =
            self.queue.iter().map(|(h, _)| self.hooks[*h].name.clone()).collect();
        pending.dedup();
        Err(Error::NotQuiet { rounds: self.max_rounds, pending })
    }

    /// Resyncs every monitor and queues the events each binding runs on.
    fn enqueue_events(&mut self) -> Result<()> {
        for hook in 0..self.hooks.len() {
            for m in &mut self.monitors[hook] {
                let binding = m.binding().clone();
                for e in m.resync(&self.cluster)? {
                    if HookDef::runs_on(&binding, e.event) {
                        self.queue.push_back((
                            hook,
                            Task::Event {
                                binding: binding.name.clone(),
                                event: e.event,
                                item: e.item,
                            },
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Queues a synthetic event (e.g. to test a hook's reaction to a `Deleted` it cannot cause).
    pub fn queue_event(
        &mut self,
        hook: usize,
        binding: &str,
        event: WatchEvent,
        item: addon::SnapshotItem,
    ) {
        self.queue.push_back((hook, Task::Event { binding: binding.to_owned(), event, item }));
    }

    /// Retries a failed run (non-zero exit, or a Kubernetes operation that failed) up to
    /// `retries` times before returning its error, as the framework keeps a failed task at the
    /// head of its queue and runs it again.
    pub fn with_retries(mut self, retries: usize) -> Self {
        self.max_retries = retries;
        self
    }

    /// The errors of the runs that failed and were retried, in order.
    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    /// One run of hook `hook` for `tasks`, retried while it fails (see [`Self::with_retries`]).
    pub fn run_tasks(&mut self, hook: usize, tasks: &[Task]) -> Result<RunRecord> {
        let mut retries = 0;
        loop {
            match self.run_once(hook, tasks) {
                Err(e @ (Error::HookFailed { .. } | Error::Kube(_)))
                    if retries < self.max_retries =>
                {
                    retries += 1;
                    self.failures.push(e.to_string());
                    // During the framework's backoff the watches deliver what the failed run
                    // did write: the retry sees it in its snapshots.
                    self.enqueue_events()?;
                }
                other => return other,
            }
        }
    }

    /// One run of hook `hook` for `tasks`: contexts, spawn, outputs applied.
    fn run_once(&mut self, hook: usize, tasks: &[Task]) -> Result<RunRecord> {
        let def = self.hooks[hook].clone();
        let snapshots: BTreeMap<String, Vec<addon::SnapshotItem>> =
            self.monitors[hook].iter().map(|m| (m.binding().name.clone(), m.snapshot())).collect();
        let contexts = hooks::build_contexts(&def, tasks, &snapshots);
        let contexts_json = serde_json::to_value(&contexts)
            .map_err(|source| Error::Json { what: "contexts".into(), source })?;
        let dir = tempfile::tempdir_in(self.tmp.path()).map_err(|source| Error::Io {
            action: "create",
            path: self.tmp.path().into(),
            source,
        })?;
        let file = |name: &str, content: &str| -> Result<String> {
            let path = dir.path().join(name);
            std::fs::write(&path, content).map_err(|source| Error::Io {
                action: "write",
                path: path.clone(),
                source,
            })?;
            Ok(path.display().to_string())
        };
        let mut values_doc = Map::new();
        values_doc.insert("global".into(), self.global_values.clone());
        values_doc.insert(self.values_key.clone(), self.values.clone());
        let mut config_doc = Map::new();
        config_doc.insert("global".into(), json!({}));
        config_doc.insert(self.values_key.clone(), self.config_values.clone());
        let env = [
            ("PATH", path_var()),
            ("MODULE_NAME", self.module.clone()),
            ("BINDING_CONTEXT_PATH", file("binding-context.json", &contexts_json.to_string())?),
            ("VALUES_PATH", file("values.json", &Value::Object(values_doc).to_string())?),
            (
                "CONFIG_VALUES_PATH",
                file("config-values.json", &Value::Object(config_doc).to_string())?,
            ),
            ("VALUES_JSON_PATCH_PATH", file("values.json-patch", "")?),
            ("CONFIG_VALUES_JSON_PATCH_PATH", file("config-values.json-patch", "")?),
            ("KUBERNETES_PATCH_PATH", file("object-patch", "")?),
            ("METRICS_PATH", file("metrics.json", "")?),
        ];
        let index = def.index.to_string();
        let out = Command::new(&self.binary)
            .args(["hook", "run", &index])
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .output()
            .map_err(|source| Error::Spawn { path: self.binary.clone(), source })?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            return Err(Error::HookFailed {
                hook: def.name,
                status: out.status.to_string(),
                stderr,
            });
        }
        let read = |i: usize| -> Result<String> {
            std::fs::read_to_string(&env[i].1).map_err(|source| Error::Io {
                action: "read",
                path: env[i].1.clone().into(),
                source,
            })
        };
        let raw = RawOutputs {
            values_patch: read(5)?,
            config_values_patch: read(6)?,
            kubernetes: read(7)?,
            metrics: read(8)?,
        };
        let mut record = self.apply_outputs(hook, &raw)?;
        record.contexts = contexts_json;
        record.stderr = stderr;
        self.runs.push(record.clone());
        Ok(record)
    }

    /// Applies a hook's outputs with the framework's semantics (§2.3), as after an exit 0.
    pub fn apply_outputs(&mut self, hook: usize, raw: &RawOutputs) -> Result<RunRecord> {
        let name = self.hooks.get(hook).map(|h| h.name.clone()).unwrap_or_default();
        let config_patch = values::parse_values_patch(&raw.config_values_patch)?;
        let values_patch = values::parse_values_patch(&raw.values_patch)?;
        let metric_ops = metrics::parse_metrics(&raw.metrics, &name)?;
        let kube_ops = ops::parse_operations(&raw.kubernetes)?;

        self.metrics.apply(&metric_ops, &name, &self.module);
        ops::execute(&mut self.cluster, &kube_ops)?;
        if !config_patch.is_empty() {
            values::validate_values_patch(&config_patch, &self.values_key)?;
            let patched =
                values::apply_values_patch(&self.config_values, &config_patch, &self.values_key)?;
            if patched != self.config_values {
                return Err(Error::ConfigValuesPatch);
            }
        }
        values::validate_values_patch(&values_patch, &self.values_key)?;
        let new_values = values::apply_values_patch(&self.values, &values_patch, &self.values_key)?;
        if let Some(schema) = &self.schema {
            schema.validate(&new_values)?;
        }
        let values_changed = new_values != self.values;
        self.values = new_values;
        Ok(RunRecord {
            hook: name,
            contexts: Value::Null,
            stderr: String::new(),
            values_patch,
            kubernetes: kube_ops,
            values_changed,
        })
    }

    /// The name of the executable in hook names (`hooks/batchhooks`).
    pub fn executable_name(&self) -> &str {
        &self.executable_name
    }
}

fn path_var() -> String {
    std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
}
