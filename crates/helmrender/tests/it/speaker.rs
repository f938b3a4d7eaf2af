//! The speaker DaemonSet: the container contract the speaker binary reads, the platform's
//! container rules, and the objects around it (VPA, PodMonitor).

use std::collections::BTreeMap;

use helmrender::openapi::{STUB_REGISTRY, stub_digest};
use helmrender::{Error, Release};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Container, PodSpec, Toleration};
use metallb_api::names::{labels, module};
use serde_json::{Value, json};

use crate::{chart, of_kind, scenario};

fn daemonset(scenario_name: &str) -> DaemonSet {
    let objects = scenario(scenario_name).objects();
    let [daemonset] = of_kind(&objects, "DaemonSet")[..] else {
        panic!("{scenario_name}: expected exactly one DaemonSet");
    };
    serde_json::from_value(daemonset.clone()).unwrap()
}

fn pod(daemonset: &DaemonSet) -> PodSpec {
    daemonset.spec.clone().template.spec.unwrap()
}

fn speaker(pod: &PodSpec) -> Container {
    let [container] = &pod.containers[..] else { panic!("expected one container") };
    assert!(pod.init_containers.is_none(), "init containers would need the same rules");
    container.clone()
}

#[test]
fn the_daemonset_runs_one_speaker_per_member_node() {
    let ds = daemonset("two-classes");
    assert_eq!(ds.metadata.name.as_deref(), Some(module::SPEAKER_APP));
    assert_eq!(ds.metadata.namespace.as_deref(), Some(module::NAMESPACE));
    let spec = ds.spec.clone();
    let app = BTreeMap::from([(labels::APP.to_owned(), module::SPEAKER_APP.to_owned())]);
    assert_eq!(spec.selector.match_labels.as_ref(), Some(&app));
    assert_eq!(spec.template.metadata.unwrap().labels.as_ref(), Some(&app));
    assert_eq!(spec.update_strategy.unwrap().type_.as_deref(), Some("RollingUpdate"));

    let pod = pod(&ds);
    let member = BTreeMap::from([(labels::MEMBER.to_owned(), String::new())]);
    assert_eq!(pod.node_selector.as_ref(), Some(&member));
    assert_eq!(pod.service_account_name.as_deref(), Some(module::SPEAKER_APP));
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    assert_eq!(pod.priority_class_name.as_deref(), Some("system-node-critical"));
    // Long enough for the speaker's bounded leave message (1 s), short enough for fast drains.
    assert!(pod.termination_grace_period_seconds.is_some_and(|s| (2..=10).contains(&s)));
}

#[test]
fn the_container_gets_the_speaker_command_line_and_environment() {
    let ds = daemonset("two-classes");
    let pod = pod(&ds);
    let container = speaker(&pod);
    assert_eq!(
        container.image.as_deref(),
        Some(format!("{STUB_REGISTRY}@{}", stub_digest("speaker")).as_str()),
        "the image comes from the module's digests"
    );
    assert_eq!(
        container.args.as_deref(),
        Some(&["--source".to_owned(), "kubernetes".to_owned()][..])
    );

    let env: Vec<Value> =
        container.env.iter().flatten().map(|e| serde_json::to_value(e).unwrap()).collect();
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
    let value = |name: &str, value: &str| json!({"name": name, "value": value});
    assert_eq!(
        env,
        [
            field("METALLB_NODE_NAME", "spec.nodeName"),
            field("METALLB_POD_NAME", "metadata.name"),
            field("METALLB_NAMESPACE", "metadata.namespace"),
            field("HOST_IP", "status.hostIP"),
            value("METALLB_GOSSIP_BIND", "$(HOST_IP):4226"),
            value("METALLB_GOSSIP_KEY_FILE", "/etc/metallb/gossip/key"),
            value("METALLB_METRICS_ADDR", "$(HOST_IP):4227"),
            value("METALLB_LOG_FORMAT", "json"),
        ]
    );

    let ports: Vec<(String, i32, String)> = container
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap(), p.container_port, p.protocol.clone().unwrap()))
        .collect();
    assert_eq!(
        ports,
        [("gossip".into(), 4226, "UDP".into()), ("metrics".into(), 4227, "TCP".into())]
    );

    let [mount] = &container.volume_mounts.clone().unwrap()[..] else { panic!("one mount") };
    assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/etc/metallb/gossip", Some(true)));
    let volume = pod.volumes.unwrap().into_iter().find(|v| v.name == mount.name).unwrap();
    let secret = volume.secret.unwrap();
    assert_eq!(secret.secret_name.as_deref(), Some(module::GOSSIP_KEY_SECRET));
    let items: Vec<(String, String)> =
        secret.items.unwrap().into_iter().map(|i| (i.key, i.path)).collect();
    assert_eq!(items, [(module::GOSSIP_KEY_SECRET_KEY.to_owned(), "key".to_owned())]);
    assert_eq!(secret.default_mode, Some(0o400), "only the speaker reads the key");
}

#[test]
fn the_container_satisfies_the_platform_container_rules() {
    let ds = daemonset("two-classes");
    let pod = pod(&ds);
    let container = speaker(&pod);

    let pod_security = pod.security_context.clone().unwrap();
    // Root without runAsNonRoot is the allowed 0:0 form (raw sockets; see the template).
    assert_eq!(
        (pod_security.run_as_user, pod_security.run_as_group, pod_security.run_as_non_root),
        (Some(0), Some(0), Some(false))
    );
    let security = container.security_context.clone().expect("container securityContext");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_ne!(security.privileged, Some(true));
    let capabilities = security.capabilities.unwrap();
    assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    assert_eq!(capabilities.add.as_deref(), Some(&["NET_RAW".to_owned()][..]));
    for profile in [security.seccomp_profile, pod_security.seccomp_profile] {
        assert_eq!(profile.map(|p| p.type_).as_deref(), Some("RuntimeDefault"));
    }
    assert!(matches!(container.image_pull_policy.as_deref(), None | Some("IfNotPresent")));

    let requests = container.resources.clone().unwrap().requests.unwrap();
    for resource in ["cpu", "memory", "ephemeral-storage"] {
        assert!(requests.contains_key(resource), "no {resource} request");
    }

    for (probe, path) in
        [(&container.liveness_probe, "/healthz"), (&container.readiness_probe, "/readyz")]
    {
        let get = probe.clone().unwrap().http_get.expect("an HTTP probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(serde_json::to_value(&get.port).unwrap(), "metrics");
    }
    for port in container.ports.iter().flatten() {
        // The platform reserves 4200-4299 for host-network components.
        assert!((4200..=4299).contains(&port.container_port), "{port:?}");
        assert_eq!(port.host_port, Some(port.container_port));
    }
}

/// What the platform's node-level daemons tolerate (lib-helm's "any-node" set, with the
/// storage-problem taints, as the previous module's speaker had), in template order.
const ANY_NODE: [&str; 9] = [
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
    "dedicated.deckhouse.io",
    "dedicated",
    "DeletionCandidateOfClusterAutoscaler",
    "ToBeDeletedByClusterAutoscaler",
    "drbd.linbit.com/lost-quorum",
    "drbd.linbit.com/force-io-error",
    "drbd.linbit.com/ignore-fail-over",
];

fn toleration_keys(tolerations: &[Toleration]) -> Vec<String> {
    tolerations.iter().map(|t| t.key.clone().unwrap_or_default()).collect()
}

/// Front nodes are tainted (`dedicated.deckhouse.io=frontend:NoExecute` in the platform's
/// examples): the speaker runs there without any setting, and the settings add to the set.
#[test]
fn tolerations_are_the_any_node_set_plus_the_settings() {
    let defaults = pod(&daemonset("two-classes")).tolerations.unwrap();
    assert_eq!(toleration_keys(&defaults), ANY_NODE);
    let front = defaults.iter().find(|t| t.key.as_deref() == Some("dedicated.deckhouse.io"));
    let front = front.unwrap();
    assert_eq!(front.operator.as_deref(), Some("Exists"));
    assert!(front.effect.is_none(), "every effect, NoExecute included");

    let tolerations = pod(&daemonset("tolerations")).tolerations.unwrap();
    let from_settings: Vec<Toleration> =
        serde_json::from_value(crate::with_tolerations()["speaker"]["tolerations"].clone())
            .unwrap();
    assert_eq!(toleration_keys(&tolerations[..ANY_NODE.len()]), ANY_NODE);
    assert_eq!(tolerations[ANY_NODE.len()..], from_settings[..]);
}

/// The platform's `global.modules.placement.customTolerationKeys` are tolerated too.
#[test]
fn custom_toleration_keys_of_the_platform_are_tolerated() {
    let mut values = scenario("two-classes").values();
    values["global"]["modules"]["placement"] =
        json!({"customTolerationKeys": ["node.example.com/edge"]});
    let release = Release { name: module::NAME.into(), namespace: module::NAMESPACE.into() };
    let manifests = chart().render(&values, &release).unwrap();
    let objects: Vec<Value> =
        manifests.iter().enumerate().map(|(i, m)| m.to_json(i).unwrap()).collect();
    let [ds] = of_kind(&objects, "DaemonSet")[..] else { panic!("one DaemonSet") };
    let ds: DaemonSet = serde_json::from_value(ds.clone()).unwrap();
    let keys = toleration_keys(&pod(&ds).tolerations.unwrap());
    assert_eq!(keys.last().map(String::as_str), Some("node.example.com/edge"));
    assert_eq!(keys.len(), ANY_NODE.len() + 1);
}

#[test]
fn the_vpa_and_the_pod_monitor_follow_the_daemonset() {
    let objects = scenario("two-classes").objects();
    let [vpa] = of_kind(&objects, "VerticalPodAutoscaler")[..] else { panic!("one VPA") };
    assert_eq!(
        vpa["spec"]["targetRef"],
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": module::SPEAKER_APP})
    );
    assert!(
        ["Off", "Initial"].contains(&vpa["spec"]["updatePolicy"]["updateMode"].as_str().unwrap())
    );
    let [policy] =
        vpa["spec"]["resourcePolicy"]["containerPolicies"].as_array().unwrap().as_slice()
    else {
        panic!("one container policy")
    };
    assert_eq!(policy["containerName"], "speaker");
    for bound in ["minAllowed", "maxAllowed"] {
        for resource in ["cpu", "memory"] {
            assert!(policy[bound][resource].is_string(), "{bound}.{resource}");
        }
    }

    let [monitor] = of_kind(&objects, "PodMonitor")[..] else { panic!("one PodMonitor") };
    assert_eq!(monitor["metadata"]["labels"]["prometheus"], "main");
    assert_eq!(monitor["spec"]["namespaceSelector"]["matchNames"], json!([module::NAMESPACE]));
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        json!({labels::APP: module::SPEAKER_APP})
    );
    let [endpoint] = monitor["spec"]["podMetricsEndpoints"].as_array().unwrap().as_slice() else {
        panic!("one endpoint")
    };
    assert_eq!(endpoint["port"], "metrics");
    let node = json!({"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"});
    assert!(endpoint["relabelings"].as_array().unwrap().contains(&node), "node label from the pod");
}

#[test]
fn a_missing_image_digest_fails_the_render() {
    let mut values = scenario("two-classes").values();
    values["global"]["modulesImages"]["digests"][module::NAME] = json!({});
    let release = Release { name: module::NAME.into(), namespace: module::NAMESPACE.into() };
    let error = chart().render(&values, &release).unwrap_err();
    assert!(
        matches!(&error, Error::Render { template, .. } if template.ends_with("daemonset.yaml"))
    );
    assert!(crate::error_chain(&error).contains("no digest for the image speaker"), "{error}");
}
