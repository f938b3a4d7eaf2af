//! Sources of desired state: which addresses exist, which node announces each and on which
//! interfaces. Every source implements [`Source`] and publishes whole [`DesiredState`]
//! snapshots; the speaker derives what *this* node owns with [`owned`].
//!
//! ```text
//!  FileSource (file:PATH)         ─┐
//!  KubernetesSource (kubernetes)   ─┴─► watch<Option<Arc<DesiredState>>> ─► owned(state, node, live) ─► OwnedSet
//! ```

pub mod file;
pub mod kubernetes;

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
    /// Nodes that take over in this order while `node` is dead in the gossip view.
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
    /// No Kubernetes client configuration (neither in-cluster nor a kubeconfig). Not a
    /// `#[source]`: kube's message already carries its causes, chaining would repeat them.
    #[error("cannot configure the Kubernetes client: {0}")]
    KubeConfig(kube::Error),
}

/// The `--source` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// `file:PATH`.
    File(PathBuf),
    /// `kubernetes`: the in-cluster API (or the kubeconfig outside a cluster).
    Kubernetes,
}

/// Why a `--source` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceSpecError {
    /// Anything but `kubernetes` or `file:PATH`.
    #[error("unknown source {0:?}; expected `kubernetes` or `file:PATH`")]
    Unknown(String),
}

impl FromStr for SourceSpec {
    type Err = SourceSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("file:") {
            Some(path) if !path.is_empty() => Ok(SourceSpec::File(PathBuf::from(path))),
            _ if s == "kubernetes" => Ok(SourceSpec::Kubernetes),
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

    /// The classes `node` may announce for: those of the addresses it owns or backs up. Only
    /// their interface lists matter on this node; another node's class naming an interface this
    /// node lacks is none of its business.
    pub fn classes_of(&self, node: &str) -> BTreeMap<&str, &ClassSpec> {
        self.addresses
            .iter()
            .filter(|a| a.node == node || a.backups.iter().any(|b| b == node))
            .filter_map(|a| a.class.as_deref())
            .filter_map(|name| self.classes.get_key_value(name))
            .map(|(name, class)| (name.as_str(), class))
            .collect()
    }

    /// Every interface named by a class `node` may announce for: the speaker listens on them
    /// besides the automatic choice.
    pub fn named_interfaces(&self, node: &str) -> BTreeSet<String> {
        self.classes_of(node).values().flat_map(|c| c.interfaces.iter().cloned()).collect()
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

/// The node announcing `address`: its `node` while that node is live, else the first live
/// entry of `backups`, else nobody (answering from a dead node is impossible anyway, and a
/// non-backup taking over would fight the hooks' placement).
pub fn announcer<'a>(address: &'a AddressSpec, live: &impl Fn(&str) -> bool) -> Option<&'a str> {
    std::iter::once(&address.node)
        .chain(&address.backups)
        .find(|node| live(node.as_str()))
        .map(String::as_str)
}

/// The addresses `node` announces: its own while it runs (this node always counts as live),
/// plus those whose node is dead in `live` and of which it is the first live backup. The
/// take-over lasts until the hooks move the address (or the node comes back).
///
/// `quorum` says whether this speaker reaches a majority of the speakers it knows. Without it
/// this speaker may be the one cut off: the others may have declared it dead and a backup on
/// their side may answer for its addresses. So it announces only what nobody else could take
/// over — its own addresses without backups — and takes over nothing (no split brain: of two
/// sides of a partition at most one holds a majority).
pub fn owned(
    state: &DesiredState,
    node: &str,
    live: &impl Fn(&str) -> bool,
    quorum: bool,
) -> OwnedSet {
    let live = |name: &str| name == node || live(name);
    OwnedSet::new(
        state
            .addresses
            .iter()
            .filter(|a| {
                if quorum {
                    announcer(a, &live) == Some(node)
                } else {
                    a.node == node && a.backups.is_empty()
                }
            })
            .map(|a| (a.ip, state.scope(a))),
    )
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
        assert_eq!("kubernetes".parse(), Ok(SourceSpec::Kubernetes));
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
        let mine = owned(&state, "a", &|_| true, true);
        assert_eq!((mine.len_v4(), mine.len_v6()), (4, 0));
        assert_eq!(mine.get("192.0.2.10".parse().expect("ip")), Some(&Scope::Automatic));
        assert_eq!(
            mine.get("192.0.2.11".parse().expect("ip")),
            Some(&Scope::Only(BTreeSet::from(["eth1".to_string()])))
        );
        assert_eq!(mine.get("192.0.2.12".parse().expect("ip")), Some(&Scope::Automatic));
        assert_eq!(mine.get("192.0.2.13".parse().expect("ip")), Some(&Scope::Automatic));
        assert_eq!(owned(&state, "b", &|_| true, true).len_v6(), 1);
        assert_eq!(state.named_interfaces("a"), BTreeSet::from(["eth1".to_string()]));
    }

    #[test]
    fn the_first_live_backup_takes_over_a_dead_node() {
        let state = file::parse(
            "addresses:\n\
             - {ip: 192.0.2.10, node: a, backups: [b, c]}\n\
             - {ip: 192.0.2.11, node: b, backups: [a]}\n\
             - {ip: 192.0.2.12, node: a}\n",
        )
        .expect("valid");
        let ips = |set: OwnedSet| {
            ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
                .into_iter()
                .filter(|ip| set.get(ip.parse().expect("ip")).is_some())
                .collect::<Vec<_>>()
        };
        let all = |_: &str| true;
        assert_eq!(ips(owned(&state, "a", &all, true)), ["192.0.2.10", "192.0.2.12"]);
        assert_eq!(ips(owned(&state, "b", &all, true)), ["192.0.2.11"]);
        assert!(ips(owned(&state, "c", &all, true)).is_empty());
        // a dead: b takes .10 (first backup); .12 has no backup and is announced by nobody.
        let a_dead = |n: &str| n != "a";
        assert_eq!(ips(owned(&state, "b", &a_dead, true)), ["192.0.2.10", "192.0.2.11"]);
        assert!(ips(owned(&state, "c", &a_dead, true)).is_empty());
        // a and b dead: c takes .10; nobody else may.
        let c_only = |n: &str| n == "c";
        assert_eq!(ips(owned(&state, "c", &c_only, true)), ["192.0.2.10"]);
        // A node always counts itself live: a view where everybody else is dead never makes it
        // drop its own addresses, and it backs up b.
        assert_eq!(
            ips(owned(&state, "a", &|_| false, true)),
            ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
        );
        assert_eq!(announcer(&state.addresses[0], &|_: &str| false), None);
    }

    #[test]
    fn only_the_classes_a_node_may_announce_for_name_its_interfaces() {
        let state = file::parse(
            "classes:\n\
             \x20 front: {interfaces: [eth1]}\n\
             \x20 back: {interfaces: [bond0, eth2]}\n\
             \x20 idle: {interfaces: [eth9]}\n\
             addresses:\n\
             - {ip: 192.0.2.10, node: a, class: front}\n\
             - {ip: 192.0.2.11, node: b, backups: [c], class: back}\n\
             - {ip: 192.0.2.12, node: b, class: undeclared}\n",
        )
        .expect("valid");
        let names = |node: &str| state.named_interfaces(node).into_iter().collect::<Vec<_>>();
        let cases: [(&str, &[&str]); 4] =
            [("a", &["eth1"]), ("b", &["bond0", "eth2"]), ("c", &["bond0", "eth2"]), ("d", &[])];
        for (node, want) in cases {
            assert_eq!(names(node), want, "{node}");
        }
        assert_eq!(state.classes_of("c").keys().collect::<Vec<_>>(), [&"back"]);
    }

    #[test]
    fn without_quorum_only_own_addresses_nobody_could_take_over_are_announced() {
        let state = file::parse(
            "addresses:\n\
             - {ip: 192.0.2.10, node: a, backups: [b]}\n\
             - {ip: 192.0.2.11, node: a}\n\
             - {ip: 192.0.2.12, node: b, backups: [a]}\n",
        )
        .expect("valid");
        let ips = |set: OwnedSet| {
            ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
                .into_iter()
                .filter(|ip| set.get(ip.parse().expect("ip")).is_some())
                .collect::<Vec<_>>()
        };
        // (live view of b, quorum) → what a announces.
        let cases: [(bool, bool, &[&str]); 4] = [
            (true, true, &["192.0.2.10", "192.0.2.11"]),
            (false, true, &["192.0.2.10", "192.0.2.11", "192.0.2.12"]),
            (true, false, &["192.0.2.11"]),
            (false, false, &["192.0.2.11"]),
        ];
        for (b_live, quorum, want) in cases {
            let live = |n: &str| n != "b" || b_live;
            assert_eq!(
                ips(owned(&state, "a", &live, quorum)),
                want,
                "b live {b_live}, quorum {quorum}"
            );
        }
    }
}
