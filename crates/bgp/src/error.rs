//! The crate's error type.

use std::path::PathBuf;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can fail in this crate outside the protocol itself (protocol errors become
/// NOTIFICATIONs and counted session events, not `Err`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The announcer's configuration file could not be read.
    #[error("reading {path}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The announcer's configuration file is not valid YAML of the documented shape.
    #[error("parsing {path}")]
    ParseConfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_norway::Error,
    },
    /// A peer or route is configured in a way the speaker cannot honour.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The status could not be serialised.
    #[error("serialising the status")]
    SerializeStatus(#[source] serde_norway::Error),
    /// The status file could not be written.
    #[error("writing {path}")]
    WriteStatus {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
