//! What discovery writes, as typed documents.
//!
//! The same types serialize what is written and deserialize what is stored, so "is the stored
//! object already as wanted?" is a comparison of two typed values: no JSON tree is built on
//! either side. Stored documents are read strictly (`deny_unknown_fields`): a member the hook
//! does not write makes them differ, and the write removes it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use compact_str::CompactString;
use metallb_api::names::{api, labels};
use metallb_planner::{
    ClassStatusPlan, Condition, DesiredChild, ServicePort, ServiceStatusPlan, StringMap,
    TrafficPolicy,
};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::read::{Field, StoredChild, StoredServiceStatus};
use crate::types::is_label_value;

/// Helm's annotation that keeps an object its release no longer renders.
pub(crate) const RESOURCE_POLICY: &str = "helm.sh/resource-policy";

/// Its value: skip the delete.
const KEEP: &str = "keep";

/// A child object as written: the previous implementation's spec shape plus the index, owned by
/// the parent so that deleting the Service removes its children.
///
/// Every child carries `helm.sh/resource-policy: keep`. The previous implementation's children
/// were rendered by Helm in the module's release; this chart renders none, so the first Helm
/// upgrade after the upgrade of the module deletes every child of the old release that it
/// finds without this annotation on the live object (Helm reads it from the cluster before
/// deleting; nelm honours it as well). Discovery writes the annotation before that render
/// (beforeHelm), so the adopted children survive it; children this hook created are in no
/// release, for them it changes nothing. Should the children go anyway, the Services'
/// published IPs bring the same addresses back (the planner's pass P).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChildObject<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: ChildMeta<'a>,
    spec: ChildSpecDoc<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ChildMeta<'a> {
    name: &'a str,
    namespace: &'a str,
    labels: ChildLabels<'a>,
    annotations: ChildAnnotations,
    owner_references: [OwnerReference<'a>; 1],
}

/// The annotations of a child: only [`RESOURCE_POLICY`].
#[derive(Debug)]
struct ChildAnnotations;

impl Serialize for ChildAnnotations {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(RESOURCE_POLICY, KEEP)?;
        m.end()
    }
}

/// The labels of a child: the module's, the parent's name and, when it is a valid label value,
/// the class.
#[derive(Debug, PartialEq)]
struct ChildLabels<'a> {
    parent: &'a str,
    class: Option<&'a str>,
}

impl ChildLabels<'_> {
    fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        [
            Some((labels::HERITAGE, labels::HERITAGE_VALUE)),
            Some((labels::MODULE, metallb_api::names::module::NAME)),
            Some((labels::PARENT_SERVICE, self.parent)),
            self.class.map(|c| (labels::CLASS, c)),
        ]
        .into_iter()
        .flatten()
    }

    /// Whether stored labels are exactly these (a foreign label is removed by the write).
    fn matches(&self, stored: &BTreeMap<Cow<'_, str>, Cow<'_, str>>) -> bool {
        stored.len() == self.entries().count()
            && self.entries().all(|(k, v)| stored.get(k).map(AsRef::as_ref) == Some(v))
    }
}

impl Serialize for ChildLabels<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.entries() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OwnerReference<'a> {
    #[serde(borrow)]
    api_version: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    uid: Cow<'a, str>,
    controller: bool,
    block_owner_deletion: bool,
}

/// `{"name": ..., "namespace": ...}`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceRefDoc<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    namespace: Cow<'a, str>,
}

/// A child's spec, written and compared.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChildSpecDoc<'a> {
    #[serde(borrow)]
    service_ref: ServiceRefDoc<'a>,
    #[serde(borrow)]
    metal_load_balancer_class: Cow<'a, str>,
    index: u32,
    #[serde(borrow, default, rename = "desiredIP", skip_serializing_if = "Option::is_none")]
    desired_ip: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    shared_ip_key: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    type_: Cow<'a, str>,
    #[serde(borrow)]
    load_balancer_class: Cow<'a, str>,
    ports: Cow<'a, [ServicePort]>,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    selector: Cow<'a, StringMap>,
    external_traffic_policy: TrafficPolicy,
    internal_traffic_policy: TrafficPolicy,
    publish_not_ready_addresses: bool,
    #[serde(borrow, default, rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    cluster_ip: Option<Cow<'a, str>>,
}

fn is_empty_map(m: &StringMap) -> bool {
    m.is_empty()
}

/// The child object of a planned child.
pub(crate) fn child_object(c: &DesiredChild) -> ChildObject<'_> {
    let spec = &c.spec;
    ChildObject {
        api_version: api::CHILD_API_VERSION,
        kind: api::CHILD_KIND,
        metadata: ChildMeta {
            name: &c.name,
            namespace: &c.namespace,
            labels: ChildLabels {
                parent: &spec.service_ref.name,
                // A class name is a DNS subdomain (up to 253 characters), not always a label value.
                class: Some(spec.class.as_str()).filter(|c| is_label_value(c)),
            },
            annotations: ChildAnnotations,
            owner_references: [OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name: Cow::Borrowed(&spec.service_ref.name),
                uid: Cow::Borrowed(&c.owner_uid),
                controller: true,
                block_owner_deletion: true,
            }],
        },
        spec: ChildSpecDoc {
            service_ref: ServiceRefDoc {
                name: Cow::Borrowed(&spec.service_ref.name),
                namespace: Cow::Borrowed(&spec.service_ref.namespace),
            },
            metal_load_balancer_class: Cow::Borrowed(&spec.class),
            index: spec.index.unwrap_or_default(),
            // The CRD only accepts addresses; an invalid request is reported on the Service.
            desired_ip: spec
                .desired_ip
                .as_deref()
                .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
                .map(Cow::Borrowed),
            shared_ip_key: spec.sharing_key.as_deref().map(Cow::Borrowed),
            type_: "LoadBalancer".into(),
            load_balancer_class: api::CHILD_LOAD_BALANCER_CLASS.into(),
            ports: Cow::Borrowed(&spec.ports),
            selector: Cow::Borrowed(&spec.selector),
            external_traffic_policy: spec.external_traffic_policy,
            internal_traffic_policy: spec.internal_traffic_policy,
            publish_not_ready_addresses: spec.publish_not_ready_addresses,
            cluster_ip: spec.cluster_ip.as_deref().map(Cow::Borrowed),
        },
    }
}

impl ChildObject<'_> {
    /// Whether the stored child already has these labels, owner, resource policy and spec.
    pub(crate) fn matches(&self, stored: &StoredChild<'_>) -> bool {
        let labels = stored.labels.read::<BTreeMap<Cow<'_, str>, Cow<'_, str>>>("labels");
        let owners = stored.owner_references.read::<Vec<OwnerReference<'_>>>("ownerReferences");
        let policy = stored.resource_policy.text("resourcePolicy");
        let spec = stored.spec.read::<ChildSpecDoc<'_>>("spec");
        matches!(labels, Ok(Some(l)) if self.metadata.labels.matches(&l))
            && matches!(policy, Ok(Some(p)) if p == KEEP)
            && matches!(owners, Ok(Some(o)) if o == self.metadata.owner_references)
            && matches!(spec, Ok(Some(s)) if s == self.spec)
    }
}

/// `{"ip": ...}` of `status.loadBalancer.ingress`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ingress<'a> {
    #[serde(borrow)]
    ip: Cow<'a, str>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadBalancerStatus<'a> {
    #[serde(borrow)]
    ingress: Vec<Ingress<'a>>,
}

/// A child's status. Written whole in a merge patch, where `null` removes a member; read back
/// with absent and `null` alike.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ChildStatusDoc<'a> {
    #[serde(borrow, default)]
    ip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    node: Option<Cow<'a, str>>,
    backup_nodes: Cow<'a, [CompactString]>,
    conditions: Cow<'a, [Condition]>,
    #[serde(borrow, default)]
    load_balancer: Option<LoadBalancerStatus<'a>>,
}

/// The status of a planned child.
pub(crate) fn child_status(c: &DesiredChild) -> ChildStatusDoc<'_> {
    let ip = c.status.ip.as_deref();
    ChildStatusDoc {
        ip: ip.map(Cow::Borrowed),
        node: c.status.node.as_deref().map(Cow::Borrowed),
        backup_nodes: Cow::Borrowed(&c.status.backups),
        conditions: Cow::Borrowed(&c.status.conditions),
        load_balancer: ip
            .map(|ip| LoadBalancerStatus { ingress: vec![Ingress { ip: Cow::Borrowed(ip) }] }),
    }
}

/// `{"status": ...}` with the members to remove from the stored status set to `null`.
#[derive(Debug, Serialize)]
pub(crate) struct StatusPatch<T> {
    status: WithRemovals<T>,
}

#[derive(Debug, Serialize)]
struct WithRemovals<T> {
    #[serde(flatten)]
    wanted: T,
    #[serde(flatten)]
    remove: BTreeMap<String, ()>,
}

/// The patch that makes a stored status (`None`: no object yet) equal to `wanted`, or `None`
/// when it already is. `known` are the members `wanted` writes; any other stored member is
/// removed, so that "write, read back, compare" converges in one step.
pub(crate) fn status_patch<'a, T>(
    stored: Option<Field<'a>>,
    wanted: T,
    known: &[&str],
) -> Option<StatusPatch<T>>
where
    T: PartialEq + Deserialize<'a>,
{
    let Some(stored) = stored else {
        return Some(StatusPatch { status: WithRemovals { wanted, remove: BTreeMap::new() } });
    };
    if let Ok(Some(current)) = stored.read::<T>("status")
        && current == wanted
    {
        return None;
    }
    let remove = stored
        .read::<BTreeMap<String, serde::de::IgnoredAny>>("status")
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| (k, ()))
        .collect();
    Some(StatusPatch { status: WithRemovals { wanted, remove } })
}

/// Members [`ChildStatusDoc`] writes.
pub(crate) const CHILD_STATUS_MEMBERS: [&str; 5] =
    ["ip", "node", "backupNodes", "conditions", "loadBalancer"];

/// A class's status: its conditions, pool size and use, and the nodes that may announce.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ClassStatusDoc<'a> {
    conditions: Cow<'a, [Condition]>,
    #[serde(borrow)]
    pool_size: Cow<'a, str>,
    allocated: u64,
    member_nodes: Cow<'a, [String]>,
    #[serde(borrow)]
    node_summary: Cow<'a, str>,
    observed_generation: i64,
}

/// Members [`ClassStatusDoc`] writes.
pub(crate) const CLASS_STATUS_MEMBERS: [&str; 6] =
    ["conditions", "poolSize", "allocated", "memberNodes", "nodeSummary", "observedGeneration"];

/// The status of a planned class; `memberNodes` lists the nodes that may announce now.
pub(crate) fn class_status(
    plan: &ClassStatusPlan,
    node_summary: String,
    generation: i64,
) -> ClassStatusDoc<'_> {
    ClassStatusDoc {
        conditions: Cow::Borrowed(&plan.conditions),
        pool_size: Cow::Borrowed(&plan.pool_size),
        allocated: plan.allocated,
        member_nodes: Cow::Borrowed(&plan.candidate_nodes),
        node_summary: Cow::Owned(node_summary),
        observed_generation: generation,
    }
}

/// A Service's status as this hook writes it: `loadBalancer.ingress` and the conditions. Other
/// members of a Service's status belong to others and are left alone.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceStatusDoc<'a> {
    load_balancer: LoadBalancerStatus<'a>,
    conditions: &'a [Condition],
}

/// The Service status of a plan, or `None` when the stored one is already as planned.
pub(crate) fn service_status<'a>(
    plan: &'a ServiceStatusPlan,
    stored: Option<&StoredServiceStatus<'_>>,
) -> Option<StatusPatch<ServiceStatusDoc<'a>>> {
    let unchanged = stored.is_some_and(|s| {
        // No conditions stored compares as an empty list.
        let conditions = s.conditions.read::<Vec<Condition>>("conditions");
        let ingress = s.ingress.read::<Vec<Cow<'_, str>>>("ingress");
        conditions.is_ok_and(|c| c.unwrap_or_default() == plan.conditions)
            && ingress.is_ok_and(|i| i.unwrap_or_default() == plan.ingress)
    });
    (!unchanged).then(|| StatusPatch {
        status: WithRemovals {
            wanted: ServiceStatusDoc {
                load_balancer: LoadBalancerStatus {
                    ingress: plan
                        .ingress
                        .iter()
                        .map(|ip| Ingress { ip: Cow::Borrowed(ip) })
                        .collect(),
                },
                conditions: &plan.conditions,
            },
            remove: BTreeMap::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use metallb_planner::{ChildAction, ChildSpec, ConditionStatus, ServiceRef, Timestamp};
    use serde_json::{Value, json};

    fn desired(class: &str, desired_ip: Option<&str>) -> DesiredChild {
        DesiredChild {
            namespace: "n".into(),
            name: metallb_planner::naming::child_name("s", class, 0).into(),
            owner_uid: "uid-1".into(),
            action: ChildAction::Create,
            spec: ChildSpec {
                service_ref: ServiceRef { namespace: "n".into(), name: "s".into() },
                class: class.into(),
                index: Some(0),
                desired_ip: desired_ip.map(Into::into),
                ..Default::default()
            },
            status: metallb_planner::ChildStatus::default(),
        }
    }

    fn field(text: &str) -> Field<'_> {
        serde_json::from_str(text).unwrap()
    }

    fn value<T: Serialize>(t: &T) -> Value {
        serde_json::to_value(t).unwrap()
    }

    #[test]
    fn child_objects_are_valid_for_the_api() {
        let o = value(&child_object(&desired("front", Some("not-an-ip"))));
        assert_eq!(o["metadata"]["labels"][labels::CLASS], "front");
        assert!(o["spec"].get("desiredIP").is_none(), "the CRD accepts only addresses");
        assert_eq!(o["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(o["metadata"]["annotations"], json!({RESOURCE_POLICY: "keep"}));
        let long = format!("class.{}", "x".repeat(70));
        let o = value(&child_object(&desired(&long, Some("192.0.2.1"))));
        assert!(o["metadata"]["labels"].get(labels::CLASS).is_none(), "not a label value");
        assert!(metallb_planner::naming::is_dns_label(o["metadata"]["name"].as_str().unwrap()));
        assert_eq!(o["spec"]["desiredIP"], "192.0.2.1");
    }

    #[test]
    fn a_child_matches_what_it_was_written_as_and_nothing_else() {
        let d = desired("front", Some("192.0.2.1"));
        let written = value(&child_object(&d));
        let stored_text = |labels: &Value, spec: &Value| {
            stored_child_text(labels, &written["metadata"]["ownerReferences"], spec)
        };
        let check = |text: &str| child_object(&d).matches(&serde_json::from_str(text).unwrap());
        let labels = &written["metadata"]["labels"];
        let spec = &written["spec"];
        assert!(check(&stored_text(labels, spec)));
        // Key order does not matter.
        let mut reordered = serde_json::Map::new();
        for (k, v) in spec.as_object().unwrap().iter().rev() {
            reordered.insert(k.clone(), v.clone());
        }
        assert!(check(&stored_text(labels, &Value::Object(reordered))));
        let mut extra_label = labels.clone();
        extra_label["x"] = json!("y");
        assert!(!check(&stored_text(&extra_label, spec)));
        let mut extra_spec = spec.clone();
        extra_spec["sessionAffinity"] = json!("None");
        assert!(!check(&stored_text(labels, &extra_spec)));
        let mut other_ip = spec.clone();
        other_ip["desiredIP"] = json!("192.0.2.2");
        assert!(!check(&stored_text(labels, &other_ip)));
        // An adopted child without the keep policy is written again, so Helm keeps it.
        let owners = &written["metadata"]["ownerReferences"];
        let unkept = json!({"labels": labels, "ownerReferences": owners, "spec": spec}).to_string();
        assert!(!check(&unkept));
    }

    #[test]
    fn child_status_patches_remove_what_is_not_wanted() {
        let mut d = desired("front", None);
        let empty = value(&status_patch(None, child_status(&d), &CHILD_STATUS_MEMBERS));
        assert_eq!(
            empty,
            json!({"status": {"ip": null, "node": null, "backupNodes": [], "conditions": [], "loadBalancer": null}})
        );
        d.status.ip = Some("192.0.2.1".into());
        d.status.node = Some("a".into());
        d.status.conditions = vec![Condition {
            type_: "Announced".into(),
            status: ConditionStatus::True,
            reason: "R".into(),
            message: "m".into(),
            last_transition_time: Timestamp("t".into()),
            observed_generation: None,
        }];
        let wanted = value(&child_status(&d));
        assert_eq!(wanted["loadBalancer"], json!({"ingress": [{"ip": "192.0.2.1"}]}));
        let same = wanted.to_string();
        assert!(
            status_patch(Some(field(&same)), child_status(&d), &CHILD_STATUS_MEMBERS).is_none()
        );
        let mut foreign = wanted.clone();
        foreign["observedGeneration"] = json!(3);
        let foreign = foreign.to_string();
        let patch =
            value(&status_patch(Some(field(&foreign)), child_status(&d), &CHILD_STATUS_MEMBERS));
        assert_eq!(patch["status"]["observedGeneration"], Value::Null);
        assert_eq!(patch["status"]["ip"], "192.0.2.1");
    }

    #[test]
    fn class_status_is_written_until_stored_exactly() {
        let plan = ClassStatusPlan {
            name: "front".into(),
            conditions: Vec::new(),
            pool_size: "4".into(),
            allocated: 1,
            member_nodes: vec!["a".into(), "b".into()],
            candidate_nodes: vec!["a".into()],
            conditions_changed: false,
        };
        let wanted = || class_status(&plan, "a".into(), 3);
        let written = value(&wanted());
        assert_eq!(written["memberNodes"], json!(["a"]), "the nodes that may announce now");
        let same = written.to_string();
        assert!(status_patch(Some(field(&same)), wanted(), &CLASS_STATUS_MEMBERS).is_none());
        let mut partial = written.clone();
        partial.as_object_mut().unwrap().remove("nodeSummary");
        let partial = partial.to_string();
        let patch = value(&status_patch(Some(field(&partial)), wanted(), &CLASS_STATUS_MEMBERS));
        assert_eq!(patch["status"]["nodeSummary"], "a");
        assert!(status_patch(None, wanted(), &CLASS_STATUS_MEMBERS).is_some());
    }

    #[test]
    fn service_status_compares_conditions_and_ingress() {
        let plan = ServiceStatusPlan {
            namespace: "n".into(),
            name: "s".into(),
            ingress: vec!["192.0.2.1".into()],
            conditions: Vec::new(),
            changed: true,
        };
        fn stored<'a>(c: &'a str, i: &'a str) -> StoredServiceStatus<'a> {
            StoredServiceStatus { conditions: field(c), ingress: field(i) }
        }
        assert!(service_status(&plan, Some(&stored("null", r#"["192.0.2.1"]"#))).is_none());
        assert!(service_status(&plan, Some(&stored("[]", "[]"))).is_some());
        let patch = value(&service_status(&plan, None));
        assert_eq!(
            patch,
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}, "conditions": []}})
        );
    }

    /// A stored child as the child filter presents it.
    fn stored_child_text(labels: &Value, owners: &Value, spec: &Value) -> String {
        json!({"labels": labels, "ownerReferences": owners, "resourcePolicy": "keep", "spec": spec})
            .to_string()
    }

    /// What the API stores after a merge patch: `null` members are removed, not kept.
    fn stored_after_merge(v: Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, stored_after_merge(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    mod roundtrip {
        use super::*;
        use metallb_planner::PortTarget;
        use proptest::collection::{btree_map, vec};
        use proptest::option;
        use proptest::prelude::*;

        /// Short strings with what JSON must escape (quotes, backslashes, control and non-ASCII
        /// characters), so borrowed and owned reads are both exercised.
        fn text() -> impl Strategy<Value = String> {
            "[a-z0-9.\"\\\\/é\n -]{0,10}"
        }

        fn port() -> impl Strategy<Value = ServicePort> {
            let target = prop_oneof![
                (1..65535i32).prop_map(PortTarget::Number),
                text().prop_map(|name| PortTarget::Name(name.into()))
            ];
            (
                option::of(text()),
                prop_oneof![Just("TCP"), Just("UDP")],
                1..65535i32,
                option::of(target),
                option::of(30000..32768i32),
                option::of(text()),
            )
                .prop_map(
                    |(name, protocol, port, target_port, node_port, app_protocol)| ServicePort {
                        name: name.map(Into::into),
                        protocol: protocol.into(),
                        port,
                        target_port,
                        node_port,
                        app_protocol: app_protocol.map(Into::into),
                    },
                )
        }

        fn condition() -> impl Strategy<Value = Condition> {
            (
                text(),
                prop_oneof![
                    Just(ConditionStatus::True),
                    Just(ConditionStatus::False),
                    Just(ConditionStatus::Unknown)
                ],
                text(),
                text(),
                text(),
                option::of(any::<i64>()),
            )
                .prop_map(
                    |(type_, status, reason, message, time, observed_generation)| Condition {
                        type_: type_.into(),
                        status,
                        reason: reason.into(),
                        message: message.into(),
                        last_transition_time: Timestamp(time.into()),
                        observed_generation,
                    },
                )
        }

        fn ip() -> impl Strategy<Value = String> {
            prop_oneof![any::<std::net::IpAddr>().prop_map(|ip| ip.to_string()), text()]
        }

        prop_compose! {
            fn spec()(service in text(), namespace in text(), class in prop_oneof![text(), "[a-z]{60,70}"],
                      index in option::of(0..64u32), desired_ip in option::of(ip()),
                      sharing_key in option::of(text()), ports in vec(port(), 0..3),
                      selector in btree_map(text(), text(), 0..3), local in any::<(bool, bool)>(),
                      publish in any::<bool>(), cluster_ip in option::of(ip())) -> ChildSpec {
                let policy = |l: bool| if l { TrafficPolicy::Local } else { TrafficPolicy::Cluster };
                ChildSpec {
                    service_ref: ServiceRef { namespace: namespace.into(), name: service.into() },
                    class: class.into(),
                    index,
                    desired_ip: desired_ip.map(Into::into),
                    sharing_key: sharing_key.map(Into::into),
                    ports: ports.into(),
                    selector: std::sync::Arc::new(selector.into_iter().collect()),
                    external_traffic_policy: policy(local.0),
                    internal_traffic_policy: policy(local.1),
                    publish_not_ready_addresses: publish,
                    cluster_ip: cluster_ip.map(Into::into),
                }
            }
        }

        prop_compose! {
            fn planned()(namespace in text(), name in text(), owner_uid in text(), spec in spec(),
                         ip in option::of(ip()), node in option::of(text()),
                         backups in vec(text(), 0..3), conditions in vec(condition(), 0..3)) -> DesiredChild {
                DesiredChild {
                    namespace: namespace.into(),
                    name: name.into(),
                    owner_uid: owner_uid.into(),
                    action: ChildAction::Create,
                    spec,
                    status: metallb_planner::ChildStatus {
                        ip: ip.map(Into::into),
                        node: node.map(Into::into),
                        backups: backups.into_iter().map(Into::into).collect(),
                        conditions,
                    },
                }
            }
        }

        proptest! {
            /// Write, read back, compare converges in one step: what the hook writes for a child
            /// and its status, stored as the API stores it, compares equal and is not written
            /// again.
            #[test]
            fn a_written_child_reads_back_as_unchanged(d in planned()) {
                let object = value(&child_object(&d));
                let metadata = &object["metadata"];
                let stored = json!({"labels": metadata["labels"], "ownerReferences": metadata["ownerReferences"],
                    "resourcePolicy": metadata["annotations"][RESOURCE_POLICY], "spec": object["spec"]}).to_string();
                let stored_child: StoredChild<'_> = serde_json::from_str(&stored).unwrap();
                prop_assert!(child_object(&d).matches(&stored_child));

                let patch = value(&status_patch(None, child_status(&d), &CHILD_STATUS_MEMBERS));
                let status = stored_after_merge(patch["status"].clone()).to_string();
                prop_assert!(status_patch(Some(field(&status)), child_status(&d), &CHILD_STATUS_MEMBERS).is_none());
            }

            /// The same for a Service's status.
            #[test]
            fn a_written_service_status_reads_back_as_unchanged(
                ingress in vec(ip(), 0..4), conditions in vec(condition(), 0..4),
            ) {
                let plan = ServiceStatusPlan { namespace: "n".into(), name: "s".into(), ingress: ingress.into_iter().map(Into::into).collect(), conditions, changed: true };
                let patch = value(&service_status(&plan, None));
                let status = &patch["status"];
                let ips: Vec<Value> = status["loadBalancer"]["ingress"].as_array().unwrap().iter().map(|i| i["ip"].clone()).collect();
                let (conditions, ips) = (status["conditions"].to_string(), Value::Array(ips).to_string());
                let stored = StoredServiceStatus { conditions: field(&conditions), ingress: field(&ips) };
                prop_assert!(service_status(&plan, Some(&stored)).is_none());
            }
        }
    }
}
