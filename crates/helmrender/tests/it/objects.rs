//! Every rendered document is a well-formed Kubernetes object of the module, RBAC is least
//! privilege, and each object renders exactly when the values ask for it.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use metallb_api::names::{labels, module};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    ALL_MODULES, SCENARIOS, Scenario, id, no_settings, of_kind, root, scenario, two_classes,
};

/// Custom resource kinds the chart renders, with the apiVersion each must have.
const CUSTOM_KINDS: [(&str, &str); 4] = [
    ("VerticalPodAutoscaler", "autoscaling.k8s.io/v1"),
    ("PodMonitor", "monitoring.coreos.com/v1"),
    ("PrometheusRule", "monitoring.coreos.com/v1"),
    ("GrafanaDashboardDefinition", "deckhouse.io/v1"),
];

/// Parses `object` as `T` and serialises it back: equal only if every field is one `T` knows
/// with a value of the right type (typed parsing alone would drop a misspelt field silently).
fn round_trips<T: DeserializeOwned + Serialize>(object: &Value) {
    let typed: T = serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", id(object)));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(&back, object, "{} has fields or values its kind does not know", id(object));
}

#[test]
fn every_document_is_a_kubernetes_object() {
    for scenario in SCENARIOS {
        for object in scenario.objects() {
            match object["kind"].as_str().unwrap_or_default() {
                "Namespace" => round_trips::<Namespace>(&object),
                "ServiceAccount" => round_trips::<ServiceAccount>(&object),
                "DaemonSet" => round_trips::<DaemonSet>(&object),
                "ClusterRole" => round_trips::<ClusterRole>(&object),
                "ClusterRoleBinding" => round_trips::<ClusterRoleBinding>(&object),
                "Role" => round_trips::<Role>(&object),
                "RoleBinding" => round_trips::<RoleBinding>(&object),
                kind => {
                    let (_, api_version) = CUSTOM_KINDS
                        .iter()
                        .find(|(k, _)| *k == kind)
                        .unwrap_or_else(|| panic!("{}: unexpected kind", id(&object)));
                    assert_eq!(object["apiVersion"], *api_version, "{}", id(&object));
                    assert!(object["metadata"]["name"].as_str().is_some_and(|n| !n.is_empty()));
                    assert!(object["spec"].is_object(), "{} has no spec", id(&object));
                }
            }
        }
    }
}

#[test]
fn every_object_carries_the_module_labels() {
    for scenario in SCENARIOS {
        for object in scenario.objects() {
            let labels_ = &object["metadata"]["labels"];
            assert_eq!(labels_[labels::HERITAGE], labels::HERITAGE_VALUE, "{}", id(&object));
            assert_eq!(labels_[labels::MODULE], module::NAME, "{}", id(&object));
        }
    }
}

#[test]
fn no_object_renders_twice() {
    for scenario in SCENARIOS {
        let mut seen = BTreeSet::new();
        for object in scenario.objects() {
            assert!(seen.insert(id(&object)), "{}: {} twice", scenario.name, id(&object));
        }
    }
}

#[test]
fn rbac_has_no_wildcards_and_cluster_objects_are_named_for_the_platform() {
    for scenario in SCENARIOS {
        let objects = scenario.objects();
        for role in of_kind(&objects, "ClusterRole").into_iter().chain(of_kind(&objects, "Role")) {
            for rule in role["rules"].as_array().unwrap() {
                for key in ["apiGroups", "resources", "verbs", "resourceNames"] {
                    for item in rule[key].as_array().into_iter().flatten() {
                        assert_ne!(item, "*", "{}: wildcard in {key}", id(role));
                    }
                }
            }
        }
        for kind in ["ClusterRole", "ClusterRoleBinding"] {
            for object in of_kind(&objects, kind) {
                let name = object["metadata"]["name"].as_str().unwrap();
                assert!(
                    name.starts_with("d8:"),
                    "{}: cluster-wide names start with d8:",
                    id(object)
                );
            }
        }
    }
}

/// `(apiGroup, resource, verbs)` of every rule of a role, flattened and sorted.
fn grants(role: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        let verbs: Vec<&str> =
            rule["verbs"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                out.push((
                    group.as_str().unwrap().to_owned(),
                    resource.as_str().unwrap().to_owned(),
                    verbs.join(","),
                ));
            }
        }
    }
    out.sort();
    out
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// Reads its objects; writes nothing but the `NodeCanAnnounce` condition of the children, by
/// patching their status subresource (server-side apply), never the children themselves.
#[test]
fn the_speaker_reads_exactly_what_it_needs() {
    let objects = scenario("two-classes").objects();
    let read = "get,list,watch".to_owned();
    let cluster = named(&objects, "ClusterRole", "d8:metallb:l2lb:speaker");
    assert_eq!(
        grants(cluster),
        [
            (
                "internal.network.deckhouse.io".into(),
                "sdninternall2lbservices".into(),
                read.clone()
            ),
            (
                "internal.network.deckhouse.io".into(),
                "sdninternall2lbservices/status".into(),
                "patch".into()
            ),
            ("network.deckhouse.io".into(), "metalloadbalancerclasses".into(), read.clone()),
        ]
    );
    let role = named(&objects, "Role", "l2lb:speaker");
    assert_eq!(role["metadata"]["namespace"], module::NAMESPACE);
    assert_eq!(grants(role), [(String::new(), "pods".into(), read)]);
}

/// The platform's ClusterRole for kube-rbac-proxy (create `tokenreviews` and
/// `subjectaccessreviews`), which the platform's deckhouse module keeps; modules bind it
/// rather than define their own.
const RBAC_PROXY_ROLE: &str = "d8:rbac-proxy";
/// The Role and RoleBinding that let Prometheus read the speakers' metrics.
const METRICS_ACCESS: &str = "access-to-metallb-l2lb-speaker-metrics";

#[test]
fn bindings_bind_rendered_roles_to_the_speaker_account() {
    let objects = scenario("two-classes").objects();
    for (binding_kind, role_kind) in
        [("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")]
    {
        let bindings = of_kind(&objects, binding_kind);
        assert!(!bindings.is_empty(), "no {binding_kind}");
        for binding in bindings {
            assert_eq!(binding["roleRef"]["kind"], role_kind);
            let role = binding["roleRef"]["name"].as_str().unwrap();
            if role == RBAC_PROXY_ROLE {
                assert_eq!(role_kind, "ClusterRole");
            } else {
                named(&objects, role_kind, role);
            }
            if binding["metadata"]["name"] == METRICS_ACCESS {
                // Binds Prometheus, checked below.
                continue;
            }
            for subject in binding["subjects"].as_array().unwrap() {
                assert_eq!(subject["kind"], "ServiceAccount");
                assert_eq!(subject["namespace"], module::NAMESPACE);
                let account = named(&objects, "ServiceAccount", subject["name"].as_str().unwrap());
                assert_eq!(account["metadata"]["namespace"], module::NAMESPACE);
            }
        }
    }
}

/// kube-rbac-proxy reviews every request's token and access: the speaker's account may
/// create `tokenreviews` and `subjectaccessreviews`, through the platform's role and no other
/// grant.
#[test]
fn the_speaker_account_may_review_tokens_and_access() {
    let objects = scenario("two-classes").objects();
    let bindings: Vec<&Value> = of_kind(&objects, "ClusterRoleBinding")
        .into_iter()
        .filter(|b| b["roleRef"]["name"] == RBAC_PROXY_ROLE)
        .collect();
    let [binding] = bindings[..] else { panic!("one binding of {RBAC_PROXY_ROLE}") };
    assert_eq!(binding["metadata"]["name"], "d8:metallb:l2lb:speaker:rbac-proxy");
    assert_eq!(binding["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": module::SPEAKER_APP,
                            "namespace": module::NAMESPACE}])
    );
    // The module defines no role of its own for the reviews.
    for role in of_kind(&objects, "ClusterRole").into_iter().chain(of_kind(&objects, "Role")) {
        for (group, resource, _) in grants(role) {
            assert!(
                !matches!(group.as_str(), "authentication.k8s.io" | "authorization.k8s.io"),
                "{}: {resource}",
                id(role)
            );
        }
    }
}

/// Only the platform's Prometheus may read the speakers' metrics, and only this DaemonSet's:
/// the Role matches, verb for verb, what the proxy asks the API server.
#[test]
fn only_prometheus_reads_the_speaker_metrics() {
    let objects = scenario("two-classes").objects();
    let role = named(&objects, "Role", METRICS_ACCESS);
    assert_eq!(role["metadata"]["namespace"], module::NAMESPACE);
    assert_eq!(
        role["rules"],
        serde_json::json!([{"apiGroups": ["apps"], "resources": ["daemonsets/prometheus-metrics"],
                            "resourceNames": [module::SPEAKER_APP], "verbs": ["get"]}])
    );
    let binding = named(&objects, "RoleBinding", METRICS_ACCESS);
    assert_eq!(binding["metadata"]["namespace"], module::NAMESPACE);
    assert_eq!(
        binding["roleRef"],
        serde_json::json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": METRICS_ACCESS})
    );
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "prometheus",
                            "namespace": "d8-monitoring"}]),
        "the account whose token the PodMonitor sends"
    );

    // What the proxy asks is what the Role grants.
    let [ds] = of_kind(&objects, "DaemonSet")[..] else { panic!("one DaemonSet") };
    let containers = ds["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    let proxy = containers.iter().find(|c| c["name"] == "kube-rbac-proxy").unwrap();
    let config = proxy["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "KUBE_RBAC_PROXY_CONFIG")
        .unwrap();
    let config: Value = serde_norway::from_str(config["value"].as_str().unwrap()).unwrap();
    let attributes = &config["upstreams"][0]["authorization"]["resourceAttributes"];
    let rule = &role["rules"][0];
    assert_eq!(attributes["namespace"], role["metadata"]["namespace"]);
    assert_eq!(attributes["apiGroup"], rule["apiGroups"][0]);
    assert_eq!(
        format!(
            "{}/{}",
            attributes["resource"].as_str().unwrap(),
            attributes["subresource"].as_str().unwrap()
        ),
        rule["resources"][0].as_str().unwrap()
    );
    assert_eq!(attributes["name"], rule["resourceNames"][0]);
    assert_eq!(attributes["name"], ds["metadata"]["name"]);

    // Without the prometheus module there is no Prometheus account to grant.
    let without = Scenario {
        name: "no-prometheus",
        settings: no_settings,
        classes: two_classes,
        modules: &["operator-prometheus", "vertical-pod-autoscaler"],
        bgp: false,
    };
    let objects = without.objects();
    assert!(objects.iter().all(|o| o["metadata"]["name"] != METRICS_ACCESS));
    named(&objects, "ClusterRoleBinding", "d8:metallb:l2lb:speaker:rbac-proxy");
}

#[test]
fn user_authz_roles_carry_an_access_level() {
    let objects = scenario("no-classes").objects();
    let levels: Vec<(&str, &str)> = of_kind(&objects, "ClusterRole")
        .into_iter()
        .filter_map(|role| {
            let name = role["metadata"]["name"].as_str()?;
            name.starts_with("d8:user-authz:metallb:").then(|| {
                let level = role["metadata"]["annotations"]["user-authz.deckhouse.io/access-level"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: no access level", id(role)));
                (name, level)
            })
        })
        .collect();
    assert_eq!(
        levels,
        [
            ("d8:user-authz:metallb:user", "User"),
            ("d8:user-authz:metallb:cluster-admin", "ClusterAdmin")
        ]
    );
}

/// `kind` of every rendered object, sorted and deduplicated.
fn kinds(scenario: &Scenario) -> BTreeSet<String> {
    scenario.objects().iter().map(|o| o["kind"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn without_a_class_nothing_of_the_data_plane_renders() {
    let kinds = kinds(&scenario("no-classes"));
    for absent in [
        "DaemonSet",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRoleBinding",
        "VerticalPodAutoscaler",
        "PodMonitor",
    ] {
        assert!(!kinds.contains(absent), "{absent} rendered without a class");
    }
    // Always there: the namespace (the gossip-key hook writes into it), the access levels of the
    // CRDs, the alerts and dashboards.
    for present in ["Namespace", "ClusterRole", "PrometheusRule", "GrafanaDashboardDefinition"] {
        assert!(kinds.contains(present), "{present} missing without a class");
    }
}

#[test]
fn kinds_of_other_modules_render_only_with_those_modules() {
    let with = |modules: &'static [&'static str]| {
        kinds(&Scenario {
            name: "modules",
            settings: no_settings,
            classes: two_classes,
            modules,
            bgp: false,
        })
    };
    let cases: [(&'static [&'static str], &[&str]); 5] = [
        (&[], &[]),
        (&["vertical-pod-autoscaler"], &["VerticalPodAutoscaler"]),
        (&["operator-prometheus"], &["PodMonitor", "PrometheusRule"]),
        (&["prometheus"], &["GrafanaDashboardDefinition"]),
        (
            &ALL_MODULES,
            &[
                "VerticalPodAutoscaler",
                "PodMonitor",
                "PrometheusRule",
                "GrafanaDashboardDefinition",
            ],
        ),
    ];
    for (modules, expected) in cases {
        let rendered = with(modules);
        let custom: BTreeSet<&str> = CUSTOM_KINDS
            .iter()
            .map(|(kind, _)| *kind)
            .filter(|kind| rendered.contains(*kind))
            .collect();
        assert_eq!(custom, expected.iter().copied().collect(), "modules {modules:?}");
        assert!(rendered.contains("DaemonSet"), "modules {modules:?}");
    }
}

fn monitoring_files(dir: &str, ext: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_str().unwrap().to_owned();
            (stem, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.{ext} in {dir}");
    files
}

#[test]
fn alert_rules_and_dashboards_are_the_monitoring_files() {
    let objects = scenario("no-classes").objects();
    for (stem, text) in monitoring_files("monitoring/prometheus-rules", "yaml") {
        let rule = named(&objects, "PrometheusRule", &format!("metallb-{stem}"));
        assert_eq!(rule["metadata"]["namespace"], module::NAMESPACE);
        let groups: Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(rule["spec"]["groups"], groups, "{stem}");
    }
    for (stem, text) in monitoring_files("monitoring/grafana-dashboards", "json") {
        let dashboard =
            named(&objects, "GrafanaDashboardDefinition", &format!("d8-metallb-{stem}"));
        let definition: Value =
            serde_json::from_str(dashboard["spec"]["definition"].as_str().unwrap()).unwrap();
        let file: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(definition, file, "{stem}");
        assert!(dashboard["spec"]["folder"].as_str().is_some_and(|f| !f.is_empty()));
    }
    let namespace = named(&objects, "Namespace", module::NAMESPACE);
    assert_eq!(
        namespace["metadata"]["labels"]["prometheus.deckhouse.io/rules-watcher-enabled"], "true",
        "the platform's Prometheus loads rules only from namespaces with this label"
    );
}
