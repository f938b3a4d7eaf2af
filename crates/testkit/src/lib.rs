//! An emulation of the module framework (addon-operator in batch mode) over a fake cluster, to run
//! a module's real hook executable in tests.
//!
//! ```text
//!  Scenario (YAML) ──► FakeCluster ──► Monitor per kubernetes binding (selectors, jq, cache)
//!                          ▲                      │ events / snapshots
//!                          │                      ▼
//!              ops::execute│            hooks::build_contexts (MapV1 shapes, Group compaction)
//!                          │                      │ BINDING_CONTEXT_PATH, VALUES_PATH, ...
//!                          │                      ▼
//!                 Framework::run_hook ──► spawn `<binary> hook run N` ──► output files
//!                          │  values patch: checks + strict apply + schema   metrics: groups
//!                          └──────────── run_until_quiet: feed changes back as events
//! ```
//!
//! Typical test:
//!
//! ```no_run
//! # fn main() -> Result<(), testkit::Error> {
//! let scenario = testkit::Scenario::load("tests/scenarios/two-nodes.yaml")?;
//! // Starts the module (onStartup → Synchronization → beforeHelm → afterHelm → until quiet),
//! // checks `expect`, then applies each step, runs until quiet and checks the step.
//! let fw = scenario.run("target/debug/my-hooks", "my-module", None)?;
//! assert_eq!(fw.value("internal.nodes"), Some(&serde_json::json!(["n1"])));
//! # Ok(()) }
//! ```
//!
//! The protocol reference is `reference/addon-operator.md`; each module names what it emulates and
//! what it leaves out.

pub mod cluster;
pub mod hooks;
pub mod jq;
pub mod metrics;
pub mod monitor;
pub mod ops;
mod runner;
mod scenario;
pub mod values;

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

pub use cluster::{ApiError, FakeCluster, KindInfo, ObjectKey, Propagation};
pub use hooks::{HookDef, Task};
pub use runner::{DEFAULT_MAX_ROUNDS, Framework, RawOutputs, RunRecord};
pub use scenario::{Expect, ExpectedMetric, FixturePatch, KindSpec, ObjectRefSpec, Scenario, Step};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the emulation reports, worded like the framework where it has a message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The hook executable could not be started.
    #[error("exec {path}")]
    Spawn {
        /// The executable.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// YAML input is malformed.
    #[error("parse yaml {what}")]
    Yaml {
        /// Which document.
        what: String,
        /// The cause.
        #[source]
        source: serde_norway::Error,
    },
    /// JSON input is malformed.
    #[error("parse json {what}")]
    Json {
        /// Which document.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A jq program failed to compile or run.
    #[error("jq {filter:?}: {reason}")]
    Jq {
        /// The program.
        filter: String,
        /// What went wrong.
        reason: String,
    },
    /// The `hook list` probe did not find a batch executable.
    #[error("{path}: not a batch hook executable: `hook list` printed {stdout:?}")]
    NotBatch {
        /// The executable.
        path: PathBuf,
        /// What it printed.
        stdout: String,
    },
    /// Hook registration failed (`--config invalid`).
    #[error("{module:?} module hook {hook:?} --config invalid: {reason}")]
    HookConfig {
        /// Module name.
        module: String,
        /// Hook name.
        hook: String,
        /// Why.
        reason: String,
    },
    /// The hook exited non-zero; nothing was applied.
    #[error("hook {hook:?} failed ({status}): {stderr}")]
    HookFailed {
        /// Hook name.
        hook: String,
        /// Exit status.
        status: String,
        /// The whole stderr, which the framework uses as the error message.
        stderr: String,
    },
    /// The values patch was rejected.
    #[error("{0}")]
    ValuesPatch(String),
    /// A config values patch was written; Deckhouse's ModuleConfig backend forbids it.
    #[error("saving patch values in ModuleConfig is forbidden")]
    ConfigValuesPatch,
    /// Values or config values violate the schema.
    #[error("values are invalid: {0}")]
    Schema(String),
    /// The Kubernetes operations file could not be parsed.
    #[error("{0}")]
    KubeOps(String),
    /// Kubernetes operations failed (all were attempted).
    #[error("kubernetes operations failed: {}", .0.join("; "))]
    Kube(Vec<String>),
    /// The metrics file was rejected.
    #[error("{0}")]
    Metrics(String),
    /// A fake API call failed.
    #[error(transparent)]
    Api(ApiError),
    /// Hooks kept triggering each other.
    #[error("not quiet after {rounds} rounds; still pending: {pending:?}")]
    NotQuiet {
        /// The round cap.
        rounds: usize,
        /// Hook names with pending work.
        pending: Vec<String>,
    },
    /// No hook has the requested binding.
    #[error("no hook has a binding {0:?}")]
    NoSuchBinding(String),
    /// Scenario expectations were not met.
    #[error("scenario expectations failed:\n  {}", .0.join("\n  "))]
    Expectation(Vec<String>),
}

/// Parses a YAML stream into objects; a document may be one object, a list, or a `kind: List`.
pub fn yaml_documents(text: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(doc)
            .map_err(|source| Error::Yaml { what: "objects".into(), source })?;
        match value {
            Value::Null => {}
            Value::Array(items) => out.extend(items),
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                out.extend(m.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
            }
            other => out.push(other),
        }
    }
    Ok(out)
}
