//! The `NodeCanAnnounce` condition of the children this node announces: present (`False`)
//! only while the child's class names an interface this node lacks or has down, so that an
//! operator sees on the child itself why its IP is not answered here.
//!
//! ```text
//!  source (children of this node) ─┐
//!                                  ├─► wanted (pure) ─► Limiter decides ─► PATCH …/status (apply)
//!  data plane (interface problems) ┘
//! ```
//!
//! Each speaker writes by server-side apply on the child's `status` subresource with the
//! field manager `metallb-speaker/<node>`, so it owns only its condition in the list keyed by
//! `type`; the hooks keep condition types they do not own. The condition is removed when the
//! problem clears or the child moves to another node, rather than set `True` on every child:
//! a cluster of 30,000 children then costs writes only for the few in trouble, and the hooks'
//! runs see no status change on healthy children.
//!
//! Removal is a JSON patch that tests the item's `type` at its index and removes it, not an
//! apply without the condition: when two nodes applied equal values (both lack the interface,
//! the child moved from one to the other), server-side apply keeps the fields the other
//! manager co-owns, and a condition reduced to them no longer validates. The speaker of the
//! child's node removes any `NodeCanAnnounce` it does not want, whoever wrote it (one left by
//! a node that is gone for good included); another node's speaker removes only one its own
//! manager wrote. The test makes a concurrent rewrite of the list fail the patch instead of
//! removing the wrong item; it is retried.
//!
//! The writer is its own task: a slow or refusing API server never delays ARP/NDP answering.
//! A write is made only when the stored condition differs from the wanted one, at most
//! [`BUDGET`] per second, and for one child at most once per [`MIN_INTERVAL`] unless what is
//! wanted changed. A refused write is logged and counted, and retried after [`MIN_INTERVAL`].
//! A condition this node's manager owns on a child it no longer announces (also one left by
//! an earlier run) is removed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use metallb_api::child::SDNInternalL2LBService;
use metallb_api::names::{conditions, module};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::view::{ChildEntry, ChildView, Key};
use crate::error_chain;
use crate::interfaces::{ClassInterfaces, InterfaceProblems};
use crate::metrics::Metrics;
use crate::status_apply;

/// The shortest time between two writes of one child's condition for the same wanted state:
/// the retry delay after a refusal, and how long a write may take to show in the watch.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);

/// Writes per second at most: a missing interface on a node announcing 10,000 IPs must not
/// send 10,000 requests at once to the API server.
pub const BUDGET: usize = 20;

/// How often the writer looks for retries and the rest of a spent budget.
const RECHECK: Duration = Duration::from_secs(1);

/// A child as the condition writer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Its placement, stored condition and status managers.
    pub entry: ChildEntry,
    /// Whether the speakers announce it (labelled, class known, IP in the pool).
    pub announced: bool,
}

impl Child {
    fn key(&self) -> Key {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The children that concern one node: those placed on it, and those carrying a status part
/// of its manager (to release); sorted by key.
pub type Children = Arc<Vec<Child>>;

/// Where the source sends the children of this node.
#[derive(Debug)]
pub struct ConditionFeed {
    /// This node.
    pub node: String,
    /// Receives the children on every change; `None` until both lists are complete.
    pub updates: watch::Sender<Option<Children>>,
}

/// The field manager of `node`'s conditions.
pub fn manager(node: &str) -> String {
    status_apply::field_manager(module::SPEAKER_STATUS_MANAGER, node)
}

/// Why a node cannot announce a child's IP on every interface its class names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Some named interface does not exist on the node.
    InterfaceMissing,
    /// Every troubled named interface exists, but some is down or has no MAC.
    InterfaceDown,
}

impl Reason {
    /// The condition's `reason` and the log field.
    pub fn label(self) -> &'static str {
        match self {
            Reason::InterfaceMissing => conditions::REASON_INTERFACE_MISSING,
            Reason::InterfaceDown => conditions::REASON_INTERFACE_DOWN,
        }
    }
}

/// The condition a child should carry (always `status: False`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Why.
    pub reason: Reason,
    /// Node, class, interfaces, and what is not answered.
    pub message: String,
}

/// The conditions `node` wants, by child key: on every announced child placed on `node`
/// whose class names an interface this node lacks or has down.
pub fn wanted(
    children: &[Child],
    problems: &InterfaceProblems,
    node: &str,
) -> BTreeMap<Key, Wanted> {
    children
        .iter()
        .filter(|c| c.announced && c.entry.address.node == node)
        .filter_map(|c| {
            let class = c.entry.address.class.as_deref()?;
            let problem = problems.get(class)?;
            Some((c.key(), describe(node, class, &c.entry.address.ip.to_string(), problem)))
        })
        .collect()
}

fn list(names: &std::collections::BTreeSet<String>) -> String {
    names.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
}

fn describe(node: &str, class: &str, ip: &str, problem: &ClassInterfaces) -> Wanted {
    let plural = |n: usize| if n == 1 { "interface" } else { "interfaces" };
    let mut parts = Vec::new();
    if !problem.missing.is_empty() {
        parts.push(format!("lacks {} {}", plural(problem.missing.len()), list(&problem.missing)));
    }
    if !problem.down.is_empty() {
        parts.push(format!(
            "has {} {} down or without a MAC",
            plural(problem.down.len()),
            list(&problem.down)
        ));
    }
    let answered = if problem.usable.is_empty() {
        format!("{ip} is not answered on this node")
    } else {
        format!("{ip} is answered on this node only on {}", list(&problem.usable))
    };
    Wanted {
        reason: if problem.missing.is_empty() {
            Reason::InterfaceDown
        } else {
            Reason::InterfaceMissing
        },
        message: format!("node {node} {} named by class {class}: {answered}", parts.join(" and ")),
    }
}

/// Whether the stored condition says what is wanted.
fn stored_as(entry: &ChildEntry, wanted: &Wanted) -> bool {
    entry.condition.as_ref().is_some_and(|c| {
        c.status == "False" && c.reason == wanted.reason.label() && c.message == wanted.message
    })
}

/// The apply configuration of the condition on a child. `since` is the condition's
/// `lastTransitionTime`.
pub fn apply_body(namespace: &str, name: &str, wanted: &Wanted, since: &str) -> Value {
    json!({
        "apiVersion": SDNInternalL2LBService::api_version(&()),
        "kind": SDNInternalL2LBService::kind(&()),
        "metadata": {"name": name, "namespace": namespace},
        "status": {"conditions": [{
            "type": conditions::NODE_CAN_ANNOUNCE,
            "status": "False",
            "reason": wanted.reason.label(),
            "message": wanted.message,
            "lastTransitionTime": since,
        }]},
    })
}

/// The JSON patch removing the condition stored at `index` of `status.conditions`, refused by
/// the API server if another item is there by now.
pub fn removal(index: usize) -> Value {
    let path = format!("/status/conditions/{index}");
    json!([
        {"op": "test", "path": format!("{path}/type"), "value": conditions::NODE_CAN_ANNOUNCE},
        {"op": "remove", "path": path},
    ])
}

/// What the limiter knows of one child.
#[derive(Debug)]
struct Written {
    /// The last condition attempted (`None`: a release).
    wanted: Option<Wanted>,
    /// When.
    at: Instant,
}

/// One write to make: a child (index into the children) and its condition or release.
pub type Due = (usize, Option<Wanted>);

/// Decides which conditions to write now (pure, caller's clock).
#[derive(Debug, Default)]
pub struct Limiter {
    written: BTreeMap<Key, Written>,
}

impl Limiter {
    /// The writes due at `now` for `node` (field manager `manager`), at most `budget`: a
    /// condition not stored as wanted, at once if it differs from the last attempt, else after
    /// [`MIN_INTERVAL`] (a refusal, or a write not yet seen or undone by another writer); the
    /// removal of an unwanted condition, likewise, on a child of `node` whoever wrote it, on
    /// another child only if `manager` did.
    pub fn due(
        &self,
        now: Instant,
        children: &[Child],
        wanted: &BTreeMap<Key, Wanted>,
        (node, manager): (&str, &str),
        budget: usize,
    ) -> Vec<Due> {
        let mut due = Vec::new();
        for (index, child) in children.iter().enumerate() {
            let key = child.key();
            let want = wanted.get(&key);
            let needed = match want {
                Some(w) => !stored_as(&child.entry, w),
                None => {
                    child.entry.condition.is_some()
                        && (child.entry.address.node == node
                            || child.entry.status_managers.iter().any(|m| m == manager))
                }
            };
            if !needed {
                continue;
            }
            let send = self.written.get(&key).is_none_or(|last| {
                last.wanted.as_ref() != want || now.duration_since(last.at) >= MIN_INTERVAL
            });
            if send {
                due.push((index, want.cloned()));
                if due.len() == budget {
                    break;
                }
            }
        }
        due
    }

    /// Records a write attempted at `now`.
    pub fn record(&mut self, now: Instant, child: &Child, wanted: Option<Wanted>) {
        self.written.insert(child.key(), Written { wanted, at: now });
    }

    /// Forgets the children no longer listed.
    pub fn retain(&mut self, children: &[Child]) {
        let keys: std::collections::BTreeSet<Key> = children.iter().map(Child::key).collect();
        self.written.retain(|key, _| keys.contains(key));
    }
}

/// Writes `node`'s conditions as the children and the interface problems change, until a
/// sender is gone. Nothing is written before both are known: an empty problem list before
/// the first interface scan would release conditions only to write them again.
pub async fn write(
    client: Client,
    node: String,
    mut children: watch::Receiver<Option<Children>>,
    mut problems: watch::Receiver<Option<InterfaceProblems>>,
    metrics: Arc<Metrics>,
) {
    let manager = manager(&node);
    let apply = PatchParams::apply(&manager).force();
    let update = PatchParams { field_manager: Some(manager.clone()), ..PatchParams::default() };
    let mut limiter = Limiter::default();
    let mut tick = tokio::time::interval(RECHECK);
    loop {
        tokio::select! {
            changed = children.changed() => if changed.is_err() { return },
            changed = problems.changed() => if changed.is_err() { return },
            _ = tick.tick() => {}
        }
        let Some(current) = children.borrow_and_update().clone() else { continue };
        let Some(troubles) = problems.borrow_and_update().clone() else { continue };
        let wants = wanted(&current, &troubles, &node);
        metrics.cannot_announce.set(i64::try_from(wants.len()).unwrap_or(i64::MAX));
        limiter.retain(&current);
        let now = Instant::now();
        for (index, want) in limiter.due(now, &current, &wants, (&node, &manager), BUDGET) {
            let child = &current[index];
            let api: Api<ChildView> = Api::namespaced(client.clone(), &child.namespace);
            let name = child.name.as_str();
            let sent = match (&want, &child.entry.condition) {
                (Some(w), stored) => {
                    let since = match stored {
                        Some(c) if c.status == "False" && !c.last_transition_time.is_empty() => {
                            c.last_transition_time.clone()
                        }
                        _ => status_apply::rfc3339(SystemTime::now()).unwrap_or_default(),
                    };
                    let body = Patch::Apply(apply_body(&child.namespace, name, w, &since));
                    let request = api.patch_status(name, &apply, &body);
                    tokio::time::timeout(status_apply::WRITE_TIMEOUT, request).await
                }
                (None, Some(stored)) => {
                    let patch =
                        match serde_json::from_value::<json_patch::Patch>(removal(stored.index)) {
                            Ok(patch) => Patch::Json::<()>(patch),
                            Err(error) => {
                                tracing::error!(%error, "cannot build the condition's removal");
                                continue;
                            }
                        };
                    let request = api.patch_status(name, &update, &patch);
                    tokio::time::timeout(status_apply::WRITE_TIMEOUT, request).await
                }
                (None, None) => continue,
            };
            let key = child.key();
            match sent {
                Ok(Ok(_)) => {
                    metrics.condition_writes.inc();
                    match &want {
                        Some(w) => {
                            tracing::debug!(child = %key, reason = w.reason.label(), message = %w.message, "condition NodeCanAnnounce=False written")
                        }
                        None => tracing::debug!(child = %key, "condition NodeCanAnnounce removed"),
                    }
                }
                // The child is gone: nothing to write, nothing to release.
                Ok(Err(kube::Error::Api(status))) if status.code == 404 => {}
                Ok(Err(error)) => {
                    metrics.condition_errors.inc();
                    tracing::warn!(child = %key, error = %error_chain(&error), "child condition not written; retrying later");
                }
                Err(_) => {
                    metrics.condition_errors.inc();
                    tracing::warn!(child = %key, "child condition write timed out; retrying later");
                }
            }
            limiter.record(now, child, want);
        }
    }
}

#[cfg(test)]
mod tests;
