//! Sources of desired state: which addresses exist, which node announces each and on which
//! interfaces. Every source implements [`Source`] and publishes whole [`DesiredState`]
//! snapshots; the speaker derives what *this* node owns with [`owned`].
//!
//! ```text
//!  FileSource (file:PATH)  ─┐
//!  Kubernetes (next issue) ─┴─► watch<Option<Arc<DesiredState>>> ─► owned(state, node) ─► OwnedSet
//! ```

pub mod file;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::responder::{OwnedSet, Scope};

/// Everything the speakers should announce, cluster-wide. Also the file source's format
/// (ARCHITECTURE §5), hence the serde attributes: unknown fields are errors, not silently
/// ignored typos.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredState {
    /// Per-class interface lists; a class absent here uses the automatic choice.
    #[serde(default)]
    pub classes: BTreeMap<String, ClassSpec>,
    /// Every announced address.
    #[serde(default)]
    pub addresses: Vec<AddressSpec>,
}

/// The L2 settings of a class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    /// Interfaces to announce on; empty = automatic choice.
    #[serde(default)]
    pub interfaces: Vec<String>,
}

/// One announced address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressSpec {
    /// The address, IPv4 or IPv6.
    pub ip: IpAddr,
    /// The class, selecting the interface list.
    #[serde(default)]
    pub class: Option<String>,
    /// The announcing node.
    pub node: String,
    /// Nodes that take over in this order while `node` is dead in the gossip view. Carried for
    /// the gossip layer (next issue); unused until then.
    #[serde(default)]
    pub backups: Vec<String>,
}

/// Why a desired state was rejected or a source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML/JSON of the documented shape.
    #[error("cannot parse {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_norway::Error,
    },
    /// The content parses but contradicts itself.
    #[error("invalid desired state: {0}")]
    Invalid(String),
    /// The source ended (its publisher side is gone).
    #[error("the {0} source stopped")]
    Stopped(&'static str),
}

/// The `--source` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// `file:PATH`.
    File(PathBuf),
}

/// Why a `--source` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceSpecError {
    /// `kubernetes` is accepted by the interface but not built yet.
    #[error("the kubernetes source is not available in this build yet; use --source file:PATH")]
    KubernetesNotAvailable,
    /// Anything else.
    #[error("unknown source {0:?}; expected `kubernetes` or `file:PATH`")]
    Unknown(String),
}

impl FromStr for SourceSpec {
    type Err = SourceSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("file:") {
            Some(path) if !path.is_empty() => Ok(SourceSpec::File(PathBuf::from(path))),
            _ if s == "kubernetes" => Err(SourceSpecError::KubernetesNotAvailable),
            _ => Err(SourceSpecError::Unknown(s.to_owned())),
        }
    }
}

/// Latest desired state; `None` until the first successful load.
pub type Updates = watch::Sender<Option<Arc<DesiredState>>>;

/// A producer of desired state.
pub trait Source: Send + 'static {
    /// Loads the desired state and keeps publishing every new valid snapshot into `updates`
    /// until the receiver is gone. A failure of the *first* load is returned (the speaker cannot
    /// start without a state); later failures are logged and counted in
    /// `metrics.source_errors`, and the last good state stays published.
    fn run(
        self,
        updates: Updates,
        metrics: Arc<Metrics>,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
}

impl DesiredState {
    /// Rejects what the type cannot: an address listed twice, an empty node name.
    pub fn validate(&self) -> Result<(), SourceError> {
        let mut seen = BTreeSet::new();
        for address in &self.addresses {
            if !seen.insert(address.ip) {
                return Err(SourceError::Invalid(format!(
                    "address {} is listed twice",
                    address.ip
                )));
            }
            if address.node.is_empty() {
                return Err(SourceError::Invalid(format!(
                    "address {} has an empty node",
                    address.ip
                )));
            }
        }
        for (name, class) in &self.classes {
            if class.interfaces.iter().any(String::is_empty) {
                return Err(SourceError::Invalid(format!(
                    "class {name} lists an empty interface name"
                )));
            }
        }
        Ok(())
    }

    /// Every interface named by some class: the speaker listens on them besides the automatic
    /// choice.
    pub fn named_interfaces(&self) -> BTreeSet<String> {
        self.classes.values().flat_map(|c| c.interfaces.iter().cloned()).collect()
    }

    /// Where `address` is answered.
    pub fn scope(&self, address: &AddressSpec) -> Scope {
        match address.class.as_ref().and_then(|c| self.classes.get(c)) {
            Some(class) if !class.interfaces.is_empty() => {
                Scope::Only(class.interfaces.iter().cloned().collect())
            }
            _ => Scope::Automatic,
        }
    }
}

/// The addresses `node` announces. Until gossip exists (control-plane issue) ownership is
/// exactly `address.node == node`; the gossip layer will extend this with the first live backup
/// of a dead node.
pub fn owned(state: &DesiredState, node: &str) -> OwnedSet {
    OwnedSet::new(state.addresses.iter().filter(|a| a.node == node).map(|a| (a.ip, state.scope(a))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_spec() {
        assert_eq!(
            "file:/etc/speaker.yaml".parse(),
            Ok(SourceSpec::File("/etc/speaker.yaml".into()))
        );
        assert_eq!(
            "kubernetes".parse::<SourceSpec>(),
            Err(SourceSpecError::KubernetesNotAvailable)
        );
        assert!(matches!("file:".parse::<SourceSpec>(), Err(SourceSpecError::Unknown(_))));
        assert!(matches!("etcd".parse::<SourceSpec>(), Err(SourceSpecError::Unknown(_))));
    }

    #[test]
    fn ownership_follows_the_node_and_the_class_interfaces() {
        let state = file::parse(
            "classes: {front: {interfaces: [eth1]}, auto: {}}\n\
             addresses:\n\
             - {ip: 192.0.2.10, node: a}\n\
             - {ip: 192.0.2.11, node: a, class: front}\n\
             - {ip: 192.0.2.12, node: a, class: auto}\n\
             - {ip: 192.0.2.13, node: a, class: undeclared}\n\
             - {ip: 2001:db8::10, node: b, backups: [a]}\n",
        )
        .expect("valid");
        let mine = owned(&state, "a");
        assert_eq!((mine.len_v4(), mine.len_v6()), (4, 0));
        assert_eq!(mine.get("192.0.2.10".parse().expect("ip")), Some(&Scope::Automatic));
        assert_eq!(
            mine.get("192.0.2.11".parse().expect("ip")),
            Some(&Scope::Only(BTreeSet::from(["eth1".to_string()])))
        );
        assert_eq!(mine.get("192.0.2.12".parse().expect("ip")), Some(&Scope::Automatic));
        assert_eq!(mine.get("192.0.2.13".parse().expect("ip")), Some(&Scope::Automatic));
        assert_eq!(owned(&state, "b").len_v6(), 1);
        assert_eq!(state.named_interfaces(), BTreeSet::from(["eth1".to_string()]));
    }
}
