//! BGP mode's part of `discovery`: pools, configurations, peers and the existing announcements
//! go into the planner ([`BgpInput`]); the wanted announcements (object and status), the
//! deletions of unwanted ones and the pools' status come out as operations.
//!
//! The snapshots here are small (one item per pool, configuration, peer and BGP Service IP), so
//! they are read as JSON trees, object by object: a malformed one is skipped and reported.

use std::collections::{BTreeMap, BTreeSet};

use addon::{KubeOperation, MetricOperation, ObjectRef, RawJson};
use metallb_api::names::{api, labels, metrics};
use metallb_planner::{
    AnnouncementDeletion, AnnouncementSpec, AnnouncementStatus, BgpInput, ChildAction, Condition,
    DesiredAnnouncement, ExistingAnnouncement, PoolInput, PoolStatusPlan,
};
use serde_json::{Value, json};

use crate::types::{SkipReason, Skipped, is_ours, opt_str, req_str, string_map};
use crate::write_guard::WriteGuard;

/// Pools: what allocation reads, without `status` (written here).
pub(super) const POOL_FILTER: &str = r#"{name: .metadata.name, generation: .metadata.generation,
    addresses: .spec.addresses, autoAssign: .spec.autoAssign, avoidBuggyIPs: .spec.avoidBuggyIPs}"#;

/// Pools' status (snapshot only).
pub(super) const POOL_STATUS_FILTER: &str = r#"{name: .metadata.name, status: .status}"#;

/// Configurations: spec only, so the status that `bgp-configurations` writes runs nothing here.
pub(super) const CONFIGURATION_FILTER: &str = r#"{name: .metadata.name, spec: .spec}"#;

/// Peers: the name, and the address whose family decides which IPs a session can carry; the
/// speakers' session status runs nothing here.
pub(super) const PEER_FILTER: &str = r#"{name: .metadata.name, address: .spec.peerAddress}"#;

/// Announcements: identity, labels, owner and spec.
pub(super) const ANNOUNCEMENT_FILTER: &str = r#"{namespace: .metadata.namespace,
    name: .metadata.name, labels: .metadata.labels, ownerReferences: .metadata.ownerReferences,
    spec: .spec}"#;

/// Announcements' status (snapshot only).
pub(super) const ANNOUNCEMENT_STATUS_FILTER: &str =
    r#"{namespace: .metadata.namespace, name: .metadata.name, status: .status}"#;

/// The raw BGP snapshots of one run.
#[derive(Clone, Debug, Default)]
pub(crate) struct BgpSnapshots {
    pub(crate) pools: Vec<Value>,
    pub(crate) pool_status: Vec<Value>,
    pub(crate) configurations: Vec<Value>,
    pub(crate) peers: Vec<Value>,
    pub(crate) announcements: Vec<Value>,
    pub(crate) announcement_status: Vec<Value>,
}

/// What the planner reads, and what the writes are compared with.
pub(super) struct BgpRead {
    pub(super) input: BgpInput,
    /// Announcements carrying the module's labels, by namespace and name.
    ours: BTreeSet<(String, String)>,
    /// Every announcement that exists, by namespace and name.
    existing: BTreeSet<(String, String)>,
    /// Each pool's stored status.
    pool_status: BTreeMap<String, Value>,
    /// Each pool's generation.
    generations: BTreeMap<String, i64>,
}

/// Reads the BGP snapshots; malformed objects go to `skipped`.
pub(super) fn read(s: &BgpSnapshots, skipped: &mut Vec<Skipped>) -> BgpRead {
    let pool_status: BTreeMap<String, Value> = s
        .pool_status
        .iter()
        .filter_map(|v| Some((v.get("name")?.as_str()?.to_owned(), v["status"].clone())))
        .collect();
    let mut generations = BTreeMap::new();
    let mut pools = Vec::new();
    for v in &s.pools {
        match read_pool(v, &pool_status) {
            Ok(p) => {
                generations.insert(p.name.clone(), p.generation);
                pools.push(p);
            }
            Err(skip) => skipped.push(skip),
        }
    }
    let configurations = s
        .configurations
        .iter()
        .filter_map(|v| crate::bgp_status::read(v).map_err(|e| skipped.push(e)).ok())
        .collect();
    let peers = crate::types::peer_families(&s.peers);
    let status: BTreeMap<(String, String), &Value> = s
        .announcement_status
        .iter()
        .filter_map(|v| {
            let key = (opt_str(v, "namespace").ok()??, opt_str(v, "name").ok()??);
            Some((key, &v["status"]))
        })
        .collect();
    let (mut ours, mut existing, mut announcements) = (BTreeSet::new(), BTreeSet::new(), vec![]);
    for v in &s.announcements {
        match read_announcement(v, &status) {
            Ok((a, labelled)) => {
                let key = (a.namespace.to_string(), a.name.to_string());
                if labelled {
                    ours.insert(key.clone());
                }
                existing.insert(key);
                announcements.push(a);
            }
            Err(skip) => skipped.push(skip),
        }
    }
    BgpRead {
        input: BgpInput { pools, configurations, peers, announcements },
        ours,
        existing,
        pool_status,
        generations,
    }
}

fn read_pool(v: &Value, status: &BTreeMap<String, Value>) -> Result<PoolInput, Skipped> {
    let kind = api::POOL_KIND;
    let name =
        req_str(v, "name").map_err(|e| Skipped::new(kind, "", "", SkipReason::MissingName, e))?;
    let bad = |e: String| Skipped::new(kind, "", &name, SkipReason::WrongType, e);
    let addresses = match v.get("addresses") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|a| {
                a.as_str().map(str::to_owned).ok_or_else(|| format!("address {a} is not a string"))
            })
            .collect::<Result<_, _>>()
            .map_err(bad)?,
        Some(other) => return Err(bad(format!("addresses is not a list: {other}"))),
    };
    let flag = |key: &str, default: bool| match v.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(bad(format!("{key} is not a boolean: {other}"))),
    };
    Ok(PoolInput {
        generation: v.get("generation").and_then(Value::as_i64).unwrap_or_default(),
        addresses,
        // The CRD's default: a pool without the field assigns automatically.
        auto_assign: flag("autoAssign", true)?,
        avoid_buggy_ips: flag("avoidBuggyIPs", false)?,
        conditions: status.get(&name).map(conditions).unwrap_or_default(),
        name,
    })
}

/// An announcement and whether it carries the module's labels.
fn read_announcement(
    v: &Value,
    status: &BTreeMap<(String, String), &Value>,
) -> Result<(ExistingAnnouncement, bool), Skipped> {
    let kind = api::BGP_ANNOUNCEMENT_KIND;
    let namespace = opt_str(v, "namespace").ok().flatten().unwrap_or_default();
    let name = req_str(v, "name")
        .map_err(|e| Skipped::new(kind, &namespace, "", SkipReason::MissingName, e))?;
    let bad = |e: String| Skipped::new(kind, &namespace, &name, SkipReason::WrongType, e);
    let spec: AnnouncementSpec =
        serde_json::from_value(v.get("spec").cloned().unwrap_or(Value::Null))
            .map_err(|e| bad(e.to_string()))?;
    let owner_uid = v
        .get("ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|o| o["kind"] == "Service" && o["controller"] == true)
        .and_then(|o| o["uid"].as_str())
        .map(Into::into);
    let stored = status.get(&(namespace.clone(), name.clone()));
    let status = AnnouncementStatus {
        conditions: stored.map(|s| conditions(s)).unwrap_or_default(),
        node_summary: stored.and_then(|s| s["nodeSummary"].as_str()).map(Into::into),
    };
    let labelled = is_ours(&string_map(v, "labels").unwrap_or_default());
    let a = ExistingAnnouncement {
        namespace: namespace.as_str().into(),
        name: name.as_str().into(),
        owner_uid,
        spec,
        status,
    };
    Ok((a, labelled))
}

/// The readable conditions of a stored status; an unreadable one is dropped (and rewritten).
fn conditions(status: &Value) -> Vec<Condition> {
    status
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| serde_json::from_value(c.clone()).ok())
        .collect()
}

/// The object and the status of one wanted announcement, where they differ from the stored.
pub(super) fn announcement_ops(
    a: &DesiredAnnouncement,
    stored: &BgpRead,
    ops: &mut WriteGuard<'_>,
) -> serde_json::Result<()> {
    let key = (a.namespace.to_string(), a.name.to_string());
    let (object, status) = match a.action {
        ChildAction::Create => (true, true),
        ChildAction::Update { spec, status } => (spec, status),
        ChildAction::Keep => (false, false),
    };
    // Someone took our labels off (the speakers read only labelled announcements): put them back.
    let relabel = stored.existing.contains(&key) && !stored.ours.contains(&key);
    if object || relabel {
        ops.push(KubeOperation::CreateOrUpdate { object: RawJson::new(&announcement_object(a))? })?;
    }
    if status || !stored.existing.contains(&key) {
        let target = ObjectRef::namespaced(
            api::CHILD_API_VERSION,
            api::BGP_ANNOUNCEMENT_KIND,
            a.namespace.as_str(),
            a.name.as_str(),
        );
        let patch = json!({"status": {
            "conditions": a.status.conditions,
            "nodeSummary": a.status.node_summary,
        }});
        ops.push(KubeOperation::merge_patch(target, RawJson::new(&patch)?).status())?;
    }
    Ok(())
}

/// A wanted announcement as an object: labelled, owned by its Service.
fn announcement_object(a: &DesiredAnnouncement) -> Value {
    json!({
        "apiVersion": api::CHILD_API_VERSION,
        "kind": api::BGP_ANNOUNCEMENT_KIND,
        "metadata": {
            "name": a.name,
            "namespace": a.namespace,
            "labels": {
                labels::HERITAGE: labels::HERITAGE_VALUE,
                labels::MODULE: metallb_api::names::module::NAME,
                labels::PARENT_SERVICE: a.spec.service_ref.name,
            },
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Service",
                "name": a.spec.service_ref.name,
                "uid": a.owner_uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": a.spec,
    })
}

/// Deletes an unwanted announcement, unless another controller's (reported instead).
pub(super) fn deletion_op(
    d: &AnnouncementDeletion,
    stored: &BgpRead,
    ops: &mut WriteGuard<'_>,
    skipped: &mut Vec<Skipped>,
) -> serde_json::Result<()> {
    let ours = stored.ours.contains(&(d.namespace.to_string(), d.name.to_string()));
    let at = (d.namespace.as_str(), d.name.as_str());
    super::delete_if_ours(api::BGP_ANNOUNCEMENT_KIND, at, ours, d.reason.label(), ops, skipped)
}

/// A pool's status patch where it differs from the stored, and the pool's metrics.
pub(super) fn pool_ops(
    p: &PoolStatusPlan,
    stored: &BgpRead,
    ops: &mut WriteGuard<'_>,
    metric_ops: &mut Vec<MetricOperation>,
) -> serde_json::Result<()> {
    let generation = stored.generations.get(&p.name).copied().unwrap_or_default();
    let wanted = json!({
        "conditions": p.conditions,
        "poolSize": p.pool_size,
        "allocated": p.allocated,
        "observedGeneration": generation,
    });
    let current = stored.pool_status.get(&p.name).cloned().unwrap_or(Value::Null);
    if current != wanted {
        let mut status = wanted;
        // Members of the stored status this hook does not write go, so a re-read compares equal.
        if let (Some(current), Some(status)) = (current.as_object(), status.as_object_mut()) {
            for k in current.keys() {
                status.entry(k.clone()).or_insert(Value::Null);
            }
        }
        let target = ObjectRef::cluster(api::CLASS_API_VERSION, api::POOL_KIND, &p.name);
        ops.push(
            KubeOperation::merge_patch(target, RawJson::new(&json!({"status": status}))?)
                .status()
                .ignore_missing_object(),
        )?;
    }
    let pool = |m: MetricOperation| m.label("pool", p.name.as_str());
    // A pool size beyond f64 precision (huge IPv6 pools) is still the right magnitude.
    let size: f64 = p.pool_size.parse().unwrap_or(f64::MAX);
    metric_ops.push(pool(MetricOperation::set(metrics::GROUP_DISCOVERY, metrics::POOL_SIZE, size)));
    metric_ops.push(pool(MetricOperation::set(
        metrics::GROUP_DISCOVERY,
        metrics::POOL_ALLOCATED_IPS,
        p.allocated as f64,
    )));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_read_with_the_crd_defaults_and_bad_ones_are_skipped() {
        let status = BTreeMap::new();
        let p = read_pool(&json!({"name": "p", "addresses": ["192.0.2.0/24"]}), &status).unwrap();
        assert!(p.auto_assign && !p.avoid_buggy_ips);
        assert_eq!(p.addresses, ["192.0.2.0/24"]);
        let p =
            read_pool(&json!({"name": "p", "autoAssign": false, "avoidBuggyIPs": true}), &status)
                .unwrap();
        assert!(!p.auto_assign && p.avoid_buggy_ips && p.addresses.is_empty());
        for bad in [
            json!({"name": "p", "addresses": "192.0.2.0/24"}),
            json!({"name": "p", "addresses": [1]}),
            json!({"name": "p", "autoAssign": "yes"}),
            json!({"addresses": []}),
        ] {
            assert!(read_pool(&bad, &status).is_err(), "{bad}");
        }
    }

    #[test]
    fn announcements_are_read_with_owner_labels_and_status() {
        let v = json!({"namespace": "web", "name": "web-bgp-0",
            "labels": {"heritage": "deckhouse", "module": "metallb"},
            "ownerReferences": [{"kind": "Service", "controller": true, "uid": "u1"}],
            "spec": {"serviceRef": {"namespace": "web", "name": "web"}, "pool": "p",
                     "ip": "192.0.2.10", "routes": []}});
        let status_doc = json!({"nodeSummary": "a",
            "conditions": [{"type": "Announced", "status": "True", "reason": "R", "message": "",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}, "garbage"]});
        let status = BTreeMap::from([(("web".to_owned(), "web-bgp-0".to_owned()), &status_doc)]);
        let (a, ours) = read_announcement(&v, &status).unwrap();
        assert!(ours);
        assert_eq!(a.owner_uid.as_deref(), Some("u1"));
        assert_eq!(a.spec.ip, "192.0.2.10");
        assert_eq!(a.status.conditions.len(), 1, "the unreadable condition is dropped");
        assert_eq!(a.status.node_summary.as_deref(), Some("a"));
        let bad = json!({"namespace": "web", "name": "x", "spec": {"routes": "no"}});
        assert!(read_announcement(&bad, &status).is_err());
    }
}
