//! Part 1: one `hook run` of the discovery hook over a large cluster.
//!
//! ```text
//!  generated cluster ──jq filters of `hook config`──► beforeHelm context ──► first run
//!        ▲                                                                     │ ops, values
//!        └──────────────── test kit applies the first run's outputs ◄──────────┘
//!  same cluster ──► beforeHelm context ──► steady run (children exist: what most runs see)
//! ```
//!
//! The hook's bindings and jq filters are read from the real binary's `hook config`, so the
//! contexts are what the framework would send. Each run is measured in its own
//! `bench-exec` process and interleaved with the baseline over the same files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use addon::{KubernetesBinding, RawJson, SnapshotItem};
use anyhow::{Context, Result, bail};
use metallb_api::names::{annotations, api, labels, module};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use testkit::hooks::{HookDef, Task};
use testkit::monitor::{field_matches, label_selector_matches};
use testkit::{FakeCluster, KindInfo, ObjectKey};

use super::Tools;
use super::exec::{self, OutputSizes, Usage};
use super::jq::Program;

/// Nodes of the generated cluster, all members of every class.
pub const NODES: usize = 100;
/// Public IPs asked for by every Service.
pub const IPS_PER_SERVICE: usize = 3;
/// Classes the Services are spread over (round robin).
const CLASSES: usize = 5;
/// Namespaces the Services are spread over (round robin).
const NAMESPACES: usize = 50;
/// The name `hook config` gives the hook measured here.
const HOOK: &str = "discovery";
/// Label that marks the generated nodes and that the classes select.
const ROLE_LABEL: &str = "node-role.deckhouse.io/frontend";

/// One cluster size and how often to run each case.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// LoadBalancer Services, each asking for [`IPS_PER_SERVICE`] IPs.
    pub services: usize,
    /// Measured runs of each program per case (interleaved).
    pub repeats: usize,
}

/// Measurements of one program pair over one input.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Case {
    /// Bytes of the binding context, values and config values files.
    pub input_bytes: u64,
    /// Bytes the hook wrote (and the baseline writes).
    pub output: OutputSizes,
    /// Kubernetes operations the hook emitted.
    pub kube_ops: usize,
    /// Every measured hook run.
    pub hook: Vec<Usage>,
    /// Every measured baseline run.
    pub baseline: Vec<Usage>,
}

/// The first and the steady run at one size.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScaleResult {
    /// LoadBalancer Services.
    pub services: usize,
    /// No child exists yet: every IP and node is chosen and every object written.
    pub first: Case,
    /// The children exist and are up to date: the hook must find nothing to do.
    pub steady: Case,
}

/// Peak memory of the hook executable doing nothing (`hook list`): the floor under every run.
pub fn floor(tools: &Tools, work: &Path) -> Result<Usage> {
    exec::measure(&tools.meter, &tools.hooks, &["hook", "list"], &[], &work.join("floor.stderr"))
}

/// Runs every scale; `work` holds the generated files.
/// `keep` leaves the inputs in `work` for profiling.
pub fn run(tools: &Tools, work: &Path, scales: &[Scale], keep: bool) -> Result<Vec<ScaleResult>> {
    let bench = Bench::new(tools)?;
    scales.iter().map(|s| bench.scale(work, *s, keep)).collect()
}

/// The hook's definition and its compiled filters.
pub struct Bench<'a> {
    tools: &'a Tools,
    def: HookDef,
    programs: BTreeMap<String, Program>,
}

/// The files of one hook run.
pub struct RunFiles {
    dir: PathBuf,
}

impl RunFiles {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The framework's environment for a run over these files.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MODULE_NAME", module::NAME.to_owned()),
            ("BINDING_CONTEXT_PATH", self.path("binding-context.json")),
            ("VALUES_PATH", self.path("values.json")),
            ("CONFIG_VALUES_PATH", self.path("config-values.json")),
            ("VALUES_JSON_PATCH_PATH", self.path("values.json-patch")),
            ("CONFIG_VALUES_JSON_PATCH_PATH", self.path("config-values.json-patch")),
            ("KUBERNETES_PATCH_PATH", self.path("object-patch")),
            ("METRICS_PATH", self.path("metrics.json")),
        ]
    }

    /// Input bytes: what the hook has to read.
    pub fn input_bytes(&self) -> Result<u64> {
        ["binding-context.json", "values.json", "config-values.json"]
            .iter()
            .map(|f| Ok(std::fs::metadata(self.dir.join(f))?.len()))
            .sum()
    }

    /// Empties the output files, as the framework pre-creates them.
    fn reset_outputs(&self) -> Result<()> {
        for f in ["values.json-patch", "config-values.json-patch", "object-patch", "metrics.json"] {
            std::fs::write(self.dir.join(f), "")?;
        }
        Ok(())
    }

    fn read(&self, name: &str) -> Result<String> {
        std::fs::read_to_string(self.dir.join(name)).with_context(|| format!("read {name}"))
    }
}

/// What a run wrote, parsed and checked as the framework would.
pub struct Outputs {
    /// The values patch.
    pub values_patch: Vec<addon::PatchOp>,
    /// The Kubernetes operations.
    pub kube_ops: Vec<testkit::ops::OperationSpec>,
    /// Metric operations.
    pub metrics: usize,
    /// Byte sizes of the three files.
    pub sizes: OutputSizes,
}

impl<'a> Bench<'a> {
    /// Reads the discovery hook's definition from the binary and compiles its filters.
    pub fn new(tools: &'a Tools) -> Result<Self> {
        let out = Command::new(&tools.hooks)
            .args(["hook", "config"])
            .output()
            .with_context(|| format!("run {} hook config", tools.hooks.display()))?;
        if !out.status.success() {
            bail!("hook config failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let defs = testkit::hooks::parse_batch_config(
            &String::from_utf8_lossy(&out.stdout),
            module::NAME,
            "hooks/batchhooks",
        )?;
        let def = defs
            .into_iter()
            .find(|d| d.short_name == HOOK)
            .with_context(|| format!("no hook {HOOK:?} in hook config"))?;
        let mut programs = BTreeMap::new();
        for b in &def.config.kubernetes {
            if let Some(f) = &b.jq_filter {
                programs.insert(b.name.clone(), Program::compile(f)?);
            }
        }
        Ok(Self { tools, def, programs })
    }

    fn scale(&self, work: &Path, scale: Scale, keep: bool) -> Result<ScaleResult> {
        let n = scale.services;
        eprintln!("    hook: {n} Services: generating the cluster and the first run's context");
        let mut cluster = cluster(n)?;
        let values = json!({"global": {}, module::VALUES_KEY: {"internal": {
            // Set by `adopt-served-services` before discovery runs (beforeHelm 10 < 20).
            "migrationOfOldFashionedLBsAdoptionComplete": true}}});
        let first = self.write_run(&work.join(format!("{n}-first")), &cluster, &values)?;
        let first_out = self.run_once(&first)?;
        testkit::ops::execute(&mut cluster, &first_out.kube_ops)?;
        let module_values = testkit::values::apply_values_patch(
            &values[module::VALUES_KEY],
            &first_out.values_patch,
            module::VALUES_KEY,
        )?;
        let steady_values = json!({"global": {}, module::VALUES_KEY: module_values});
        eprintln!("    hook: {n} Services: the steady run's context");
        let steady = self.write_run(&work.join(format!("{n}-steady")), &cluster, &steady_values)?;
        drop(cluster);
        let steady_out = self.run_once(&steady)?;

        let mut result = ScaleResult {
            services: n,
            first: Case {
                input_bytes: first.input_bytes()?,
                output: first_out.sizes,
                kube_ops: first_out.kube_ops.len(),
                ..Case::default()
            },
            steady: Case {
                input_bytes: steady.input_bytes()?,
                output: steady_out.sizes,
                kube_ops: steady_out.kube_ops.len(),
                ..Case::default()
            },
        };
        eprintln!("    hook: {n} Services: {} interleaved rounds", scale.repeats);
        for _ in 0..scale.repeats {
            for (files, case) in [(&first, &mut result.first), (&steady, &mut result.steady)] {
                case.hook.push(self.measure_hook(files)?);
                case.baseline.push(self.measure_baseline(files, case.output)?);
            }
        }
        if !keep {
            // A 30k-Service input is a few hundred MiB.
            for files in [first, steady] {
                std::fs::remove_dir_all(&files.dir)?;
            }
        }
        Ok(result)
    }

    /// Writes the beforeHelm context of `cluster` and the values files into `dir`.
    pub fn write_run(&self, dir: &Path, cluster: &FakeCluster, values: &Value) -> Result<RunFiles> {
        std::fs::create_dir_all(dir)?;
        let snapshots = self.snapshots(cluster)?;
        let contexts =
            testkit::hooks::build_contexts(&self.def, &[Task::Lifecycle("beforeHelm")], &snapshots);
        let files = RunFiles { dir: dir.to_path_buf() };
        std::fs::write(dir.join("binding-context.json"), serde_json::to_vec(&contexts)?)?;
        std::fs::write(dir.join("values.json"), serde_json::to_vec(values)?)?;
        let config = json!({"global": {}, module::VALUES_KEY: {}});
        std::fs::write(dir.join("config-values.json"), serde_json::to_vec(&config)?)?;
        files.reset_outputs()?;
        Ok(files)
    }

    /// One unmeasured run whose outputs are parsed and checked like the framework does.
    pub fn run_once(&self, files: &RunFiles) -> Result<Outputs> {
        files.reset_outputs()?;
        let out = Command::new(&self.tools.hooks)
            .args(["hook", "run", &self.def.index.to_string()])
            .env_clear()
            .envs(files.env())
            .output()?;
        if !out.status.success() {
            bail!("hook run failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let values_text = files.read("values.json-patch")?;
        let kube_text = files.read("object-patch")?;
        let metrics_text = files.read("metrics.json")?;
        if !files.read("config-values.json-patch")?.is_empty() {
            bail!("the hook patched config values, which Deckhouse forbids");
        }
        let values_patch = testkit::values::parse_values_patch(&values_text)?;
        testkit::values::validate_values_patch(&values_patch, module::VALUES_KEY)?;
        Ok(Outputs {
            values_patch,
            kube_ops: testkit::ops::parse_operations(&kube_text)?,
            metrics: testkit::metrics::parse_metrics(&metrics_text, &self.def.name)?.len(),
            sizes: OutputSizes {
                values_patch: values_text.len(),
                kubernetes: kube_text.len(),
                metrics: metrics_text.len(),
            },
        })
    }

    fn measure_hook(&self, files: &RunFiles) -> Result<Usage> {
        files.reset_outputs()?;
        let index = self.def.index.to_string();
        exec::measure(
            &self.tools.meter,
            &self.tools.hooks,
            &["hook", "run", &index],
            &files.env(),
            &files.dir.join("hook.stderr"),
        )
    }

    fn measure_baseline(&self, files: &RunFiles, sizes: OutputSizes) -> Result<Usage> {
        files.reset_outputs()?;
        let (v, k, m) = (
            sizes.values_patch.to_string(),
            sizes.kubernetes.to_string(),
            sizes.metrics.to_string(),
        );
        exec::measure(
            &self.tools.meter,
            &self.tools.xtask,
            &[
                "bench-baseline",
                "--values-patch-bytes",
                &v,
                "--kubernetes-bytes",
                &k,
                "--metrics-bytes",
                &m,
            ],
            &files.env(),
            &files.dir.join("baseline.stderr"),
        )
    }

    /// Every binding's snapshot: matching objects sorted by namespace and name, as
    /// `{"filterResult": ...}` items (batch hooks never keep full objects).
    fn snapshots(&self, cluster: &FakeCluster) -> Result<BTreeMap<String, Vec<SnapshotItem>>> {
        let mut out = BTreeMap::new();
        for b in &self.def.config.kubernetes {
            let info = cluster.resolve_kind(b.api_version.as_deref(), &b.kind)?.clone();
            let mut items = Vec::new();
            for object in cluster.list(&info) {
                if !matches(b, &info, cluster, object) {
                    continue;
                }
                let filter_result = match self.programs.get(&b.name) {
                    Some(p) => Some(RawJson::from(p.run(object)?)),
                    None => None,
                };
                let keep = HookDef::keeps_full_objects(b);
                let object = keep.then(|| RawJson::from(object));
                items.push(SnapshotItem { filter_result, object });
            }
            out.insert(b.name.clone(), items);
        }
        Ok(out)
    }
}

/// Whether a watch of binding `b` sees `object` (the test kit monitor's rules).
fn matches(b: &KubernetesBinding, info: &KindInfo, cluster: &FakeCluster, object: &Value) -> bool {
    let at = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let (name, namespace) = (at("/metadata/name"), at("/metadata/namespace"));
    let by_name = b.name_selector.as_ref().is_none_or(|s| s.match_names.iter().any(|n| n == name));
    let by_labels = b
        .label_selector
        .as_ref()
        .is_none_or(|s| label_selector_matches(s, object.pointer("/metadata/labels")));
    let by_fields = b.field_selector.as_ref().is_none_or(|s| {
        s.match_expressions.iter().all(|e| field_matches(object, &e.field, &e.operator, &e.value))
    });
    let by_namespace = match (&b.namespace, info.namespaced) {
        (Some(sel), true) => {
            let by_ns_name = sel
                .name_selector
                .as_ref()
                .is_none_or(|s| s.match_names.iter().any(|n| n == namespace));
            let by_ns_labels = sel.label_selector.as_ref().is_none_or(|s| {
                cluster
                    .get(Some("v1"), "Namespace", "", namespace)
                    .is_some_and(|ns| label_selector_matches(s, ns.pointer("/metadata/labels")))
            });
            by_ns_name && by_ns_labels
        }
        _ => true,
    };
    by_name && by_labels && by_fields && by_namespace
}

/// A cluster with [`NODES`] ready nodes (each with a ready speaker pod), [`CLASSES`] classes
/// selecting all of them and `services` LoadBalancer Services asking for [`IPS_PER_SERVICE`]
/// IPs each, with an EndpointSlice each, spread over [`NAMESPACES`] namespaces.
pub fn cluster(services: usize) -> Result<FakeCluster> {
    let mut c = FakeCluster::new();
    c.register_kind(KindInfo::new(api::CLASS_API_VERSION, api::CLASS_KIND, false, true));
    c.register_kind(KindInfo::new(api::CHILD_API_VERSION, api::CHILD_KIND, true, true));
    // BGP mode's kinds: discovery watches them too (none exist in this cluster).
    for kind in [api::POOL_KIND, api::BGP_PEER_KIND, api::CONFIGURATION_KIND] {
        c.register_kind(KindInfo::new(api::CLASS_API_VERSION, kind, false, true));
    }
    c.register_kind(KindInfo::new(api::CHILD_API_VERSION, api::BGP_ANNOUNCEMENT_KIND, true, true));
    c.insert(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": module::NAMESPACE}}),
    )?;
    for ns in 0..NAMESPACES {
        c.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{ns:02}")}}))?;
    }
    let ready = json!([{"type": "Ready", "status": "True"}]);
    for n in 0..NODES {
        let node = format!("node-{n:03}");
        c.insert(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node, ROLE_LABEL: ""}},
            "status": {"conditions": ready}}))?;
        c.insert(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("l2lb-speaker-{n:03}"), "namespace": module::NAMESPACE,
                         "labels": {labels::APP: module::SPEAKER_APP}},
            "spec": {"nodeName": node},
            "status": {"conditions": ready}}))?;
    }
    for k in 0..CLASSES {
        // Private (RFC 1918) /14 pools: 262,144 addresses each, room for 30k × 3 IPs in any
        // split; the documentation ranges (a /24 each) are far too small for this count.
        c.insert(json!({"apiVersion": api::CLASS_API_VERSION, "kind": api::CLASS_KIND,
            "metadata": {"name": format!("class-{k}")},
            "spec": {"type": "L2", "isDefault": k == 0, "addressPool": [format!("10.{}.0.0/14", k * 4)],
                     "nodeSelector": {ROLE_LABEL: ""}}}))?;
    }
    for i in 0..services {
        let (name, namespace) = (format!("svc-{i:05}"), format!("ns-{:02}", i % NAMESPACES));
        // Cluster IPs and pod IPs from 10.96.0.0/12-style service and pod ranges.
        let (hi, lo) = (i / 250, i % 250 + 1);
        c.insert(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name},
                "annotations": {annotations::EXTERNAL_IPS_COUNT: IPS_PER_SERVICE.to_string(),
                                annotations::METAL_LOAD_BALANCER_CLASS: format!("class-{}", i % CLASSES)}},
            "spec": {"type": "LoadBalancer", "clusterIP": format!("10.96.{hi}.{lo}"),
                "selector": {"app": name}, "externalTrafficPolicy": "Cluster",
                "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443,
                           "nodePort": 30000 + i % 2768}]}}))?;
        let endpoint = |e: usize| {
            json!({"addresses": [format!("10.112.{hi}.{}", lo + e)],
            "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": format!("node-{:03}", (i + e * 37) % NODES)})
        };
        c.insert(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-x7k2p"), "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "endpoints": [endpoint(0), endpoint(1)],
            "ports": [{"name": "https", "port": 8443, "protocol": "TCP"}]}))?;
    }
    Ok(c)
}

/// Objects of `kind` in the cluster (for the test).
pub fn count(cluster: &FakeCluster, kind: &str) -> usize {
    cluster.objects().filter(|(k, _): &(&ObjectKey, &Value)| k.kind == kind).count()
}
