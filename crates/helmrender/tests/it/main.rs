//! The module's chart rendered for representative values: golden manifests, every object a
//! valid Kubernetes object with the module's labels, least-privilege RBAC, the speaker
//! DaemonSet's contract, and what renders under which values.

mod bgp;
mod golden;
mod objects;
mod speaker;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use addon::error_chain;
use helmrender::openapi::{ModuleSchema, global_stub};
use helmrender::{Chart, Manifest, Release};
use metallb_api::names::module;
use serde_json::{Value, json};

/// Modules whose kinds the chart uses: VPA, the Prometheus operator (PodMonitor,
/// PrometheusRule) and Prometheus (Grafana dashboards).
const ALL_MODULES: [&str; 3] = ["operator-prometheus", "prometheus", "vertical-pod-autoscaler"];

/// The repository root, which is the chart directory.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chart() -> &'static Chart {
    static CHART: OnceLock<Chart> = OnceLock::new();
    CHART.get_or_init(|| Chart::load(&root()).expect("the chart loads"))
}

/// Two classes as the discovery hook writes them (sorted by name, effective default marked).
fn two_classes() -> Value {
    json!([
        {"name": "front", "addressPool": ["198.51.100.10-198.51.100.20"], "interfaces": [],
         "nodeSelector": {"node-role.deckhouse.io/frontend": ""}, "isDefault": true},
        {"name": "internal", "addressPool": ["10.0.10.0/28", "fd00:10::/120"],
         "interfaces": ["eth1"], "nodeSelector": {"zone": "a"}, "isDefault": false},
    ])
}

/// A representative input of the chart.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    /// File name of the golden manifest (without `.yaml`).
    name: &'static str,
    /// ModuleConfig settings.
    settings: fn() -> Value,
    /// `metallb.internal.l2loadbalancers`.
    classes: fn() -> Value,
    /// `global.enabledModules`.
    modules: &'static [&'static str],
    /// `metallb.internal.bgpConfigurationsExist`.
    bgp: bool,
}

fn no_settings() -> Value {
    json!({})
}

fn with_tolerations() -> Value {
    json!({"speaker": {"tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "frontend", "effect": "NoSchedule"},
        {"key": "node.example.com/maintenance", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
    ]}})
}

fn no_classes() -> Value {
    json!([])
}

const SCENARIOS: [Scenario; 6] = [
    Scenario {
        name: "no-classes",
        settings: no_settings,
        classes: no_classes,
        modules: &ALL_MODULES,
        bgp: false,
    },
    Scenario {
        name: "two-classes",
        settings: no_settings,
        classes: two_classes,
        modules: &ALL_MODULES,
        bgp: false,
    },
    Scenario {
        name: "tolerations",
        settings: with_tolerations,
        classes: two_classes,
        modules: &ALL_MODULES,
        bgp: false,
    },
    Scenario {
        name: "no-monitoring-no-vpa",
        settings: no_settings,
        classes: two_classes,
        modules: &[],
        bgp: false,
    },
    Scenario {
        name: "bgp-configuration",
        settings: no_settings,
        classes: no_classes,
        modules: &ALL_MODULES,
        bgp: true,
    },
    Scenario {
        name: "l2-and-bgp",
        settings: with_tolerations,
        classes: two_classes,
        modules: &ALL_MODULES,
        bgp: true,
    },
];

impl Scenario {
    fn values(&self) -> Value {
        let schema = ModuleSchema::load(&root().join("openapi")).expect("schemas load");
        let internal =
            json!({"l2loadbalancers": (self.classes)(), "bgpConfigurationsExist": self.bgp});
        let global = global_stub(module::NAME, &root().join("images"), self.modules).unwrap();
        json!({"global": global, module::VALUES_KEY: schema.module_values(&(self.settings)(), &internal)})
    }

    fn render(&self) -> Vec<Manifest> {
        let release = Release { name: module::NAME.into(), namespace: module::NAMESPACE.into() };
        chart()
            .render(&self.values(), &release)
            .unwrap_or_else(|e| panic!("{}: {}", self.name, error_chain(&e)))
    }

    /// The rendered documents as JSON objects.
    fn objects(&self) -> Vec<Value> {
        let manifests = self.render();
        manifests
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.to_json(i).unwrap_or_else(|e| panic!("{}: {}", self.name, error_chain(&e)))
            })
            .collect()
    }
}

fn scenario(name: &str) -> Scenario {
    *SCENARIOS.iter().find(|s| s.name == name).expect("known scenario")
}

/// The objects of `kind`.
fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// `kind/namespace/name` of an object, for messages.
fn id(object: &Value) -> String {
    let meta = &object["metadata"];
    format!(
        "{}/{}/{}",
        object["kind"].as_str().unwrap_or("?"),
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or("?"),
    )
}
