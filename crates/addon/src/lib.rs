//! The module framework's hook protocol, generic over the module.
//!
//! addon-operator (through shell-operator) runs hooks as executables and talks to them only through
//! argv, environment variables and files (`reference/addon-operator.md` §1–3, §8). This crate is that
//! contract in Rust, and nothing else: it knows no module, no CRD and no business rule.
//!
//! ```text
//!             argv: hook list | hook config | hook run N
//! framework ───────────────────────────────────────────────► batch::run_batch
//!     │  BINDING_CONTEXT_PATH, VALUES_PATH, CONFIG_VALUES_PATH       │
//!     │                                                             ▼
//!     │                                   HookInput ──► Hook::run ──► HookOutput
//!     │                                                             │
//!     ◄──── VALUES_JSON_PATCH_PATH, KUBERNETES_PATCH_PATH, METRICS_PATH
//! ```
//!
//! One executable holds every hook of a module in the framework's *batch mode*: `hook list`
//! announces the hooks, `hook config` prints their configuration, `hook run N` runs hook `N`.
//! Stdout carries only what the framework reads; logs are JSON lines on stderr ([`log`]).
//!
//! A hook:
//!
//! ```
//! use addon::{Hook, HookConfig, HookError, HookInput, HookOutput, KubernetesBinding};
//!
//! struct CountNodes;
//!
//! impl Hook for CountNodes {
//!     fn name(&self) -> &str {
//!         "count-nodes"
//!     }
//!     fn config(&self) -> HookConfig {
//!         HookConfig::new().before_helm(10).kubernetes(
//!             KubernetesBinding::new("nodes", "v1", "Node").jq_filter(".metadata.name"),
//!         )
//!     }
//!     fn run(&self, input: HookInput) -> Result<HookOutput, HookError> {
//!         let nodes: Vec<String> = input.snapshot("nodes")?;
//!         let mut out = input.output();
//!         out.values.set("internal.nodeCount", nodes.len())?;
//!         out.metric(addon::MetricOperation::set("nodes", "d8_nodes_total", nodes.len() as f64));
//!         Ok(out)
//!     }
//! }
//!
//! // main.rs: `fn main() -> std::process::ExitCode { addon::run_batch("myModule", &[&CountNodes]) }`
//! ```

mod batch;
pub mod config;
pub mod context;
mod error;
mod io;
pub mod json_patch;
pub mod kube;
mod kube_output;
pub mod log;
pub mod metrics;
mod raw;
mod time;
pub mod values;

pub use batch::{Hook, HookError, dispatch, run_batch};
pub use config::{
    FieldSelector, FieldSelectorExpression, HookConfig, KubernetesBinding, LabelSelector,
    LabelSelectorRequirement, NameSelector, NamespaceSelector, ScheduleBinding, Settings,
    WatchEvent,
};
pub use context::{BindingContext, BindingType, SnapshotItem};
pub use error::{Error, Result, error_chain};
pub use io::{D8_TEST_KUBERNETES_PATCH_SET_FILE, HookInput, HookOutput};
pub use json_patch::{PatchOp, PatchOpKind};
pub use kube::{KubeOperation, ObjectRef};
pub use kube_output::KubeOutput;
pub use metrics::{MetricAction, MetricOperation};
pub use raw::RawJson;
pub use time::rfc3339;
pub use values::{PatchableValues, values_key};
