//! The crate's error type.

use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while speaking the framework's protocol.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file named by the framework could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done (`read`, `write`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file named by the framework is not the JSON we expect.
    #[error("parse {what}")]
    Json {
        /// Which document (`binding context`, `values`, ...).
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// An environment variable the run needs is not set.
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    /// No binding context of this run carries the snapshot of the binding.
    #[error("no snapshot of binding {0:?} in this run's binding contexts")]
    NoSnapshot(String),
    /// A snapshot item has neither `filterResult` nor `object`, or does not fit the target type.
    #[error("snapshot {binding:?} item {index}: {reason}")]
    SnapshotItem {
        /// The binding name.
        binding: String,
        /// Position in the snapshot.
        index: usize,
        /// Why the item could not be used.
        reason: String,
    },
    /// A values path cannot be applied (empty, or crossing a non-object).
    #[error("values path {path:?}: {reason}")]
    ValuesPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A value could not be converted to JSON.
    #[error("serialize value")]
    Serialize(#[source] serde_json::Error),
    /// A JSON patch operation cannot be applied to the document (strict RFC 6902).
    #[error("json patch {op} {path:?}: {reason}")]
    Patch {
        /// The operation (`add`, `remove`, ...).
        op: &'static str,
        /// The JSON pointer.
        path: String,
        /// Why it failed.
        reason: &'static str,
    },
    /// A JSON pointer is malformed.
    #[error("invalid json pointer {0:?}")]
    Pointer(String),
    /// The hook's configuration uses something batch mode cannot express.
    #[error("hook {hook:?} cannot run in batch mode: {reason}")]
    NotBatchExpressible {
        /// The hook name.
        hook: String,
        /// What cannot be expressed.
        reason: String,
    },
    /// The module's values are not an object.
    #[error("values of {0:?} are not an object")]
    ValuesNotObject(String),
}

/// An error with its causes, `: `-separated, for one log line or message.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
