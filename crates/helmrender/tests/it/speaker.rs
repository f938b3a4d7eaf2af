//! The speaker DaemonSet: the container contract the speaker binary reads, the kube-rbac-proxy
//! in front of its metrics, the platform's container rules, and the objects around it (VPA,
//! PodMonitor).

use std::collections::BTreeMap;

use std::net::SocketAddr;

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

/// The speaker's HTTP listener (metrics and health): loopback only, see the template.
const LOOPBACK_HTTP: &str = "127.0.0.1:4228";
/// The host port of kube-rbac-proxy, the way to the speaker's metrics from the network.
const PROXY_PORT: i32 = 4227;

fn container(pod: &PodSpec, name: &str) -> Container {
    let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["speaker", "kube-rbac-proxy"], "the speaker and its metrics proxy");
    assert!(pod.init_containers.is_none(), "init containers would need the same rules");
    pod.containers.iter().find(|c| c.name == name).unwrap().clone()
}

fn speaker(pod: &PodSpec) -> Container {
    container(pod, "speaker")
}

fn proxy(pod: &PodSpec) -> Container {
    container(pod, "kube-rbac-proxy")
}

/// `env` of a container as JSON, in order.
fn env_json(container: &Container) -> Vec<Value> {
    container.env.iter().flatten().map(|e| serde_json::to_value(e).unwrap()).collect()
}

/// `(name, containerPort, hostPort, protocol)` of every port of a container.
fn ports(container: &Container) -> Vec<(String, i32, Option<i32>, String)> {
    container
        .ports
        .iter()
        .flatten()
        .map(|p| {
            (p.name.clone().unwrap(), p.container_port, p.host_port, p.protocol.clone().unwrap())
        })
        .collect()
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

    let env = env_json(&container);
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
            value("METALLB_METRICS_ADDR", LOOPBACK_HTTP),
            value("METALLB_LOG_FORMAT", "json"),
        ]
    );

    // Gossip is the only port of the speaker on the node's address; its HTTP listener is on
    // loopback and undeclared (see the proxy test).
    assert_eq!(ports(&container), [("gossip".into(), 4226, Some(4226), "UDP".into())]);

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

    // The kubelet shares the node's network namespace with a host-network pod, so it reaches
    // the loopback listener directly, without a token for the proxy.
    let loopback: SocketAddr = LOOPBACK_HTTP.parse().unwrap();
    for (probe, path) in
        [(&container.liveness_probe, "/healthz"), (&container.readiness_probe, "/readyz")]
    {
        let get = probe.clone().unwrap().http_get.expect("an HTTP probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.host.as_deref(), Some(loopback.ip().to_string().as_str()));
        assert_eq!(serde_json::to_value(&get.port).unwrap(), loopback.port());
    }
    for container in &pod.containers {
        for port in container.ports.iter().flatten() {
            // The platform reserves 4200-4299 for host-network components.
            assert!((4200..=4299).contains(&port.container_port), "{port:?}");
            assert_eq!(port.host_port, Some(port.container_port));
        }
    }
    // The loopback port is the node's too: inside the range, clear of the declared ports.
    assert!((4200..=4299).contains(&loopback.port()));
    let declared: Vec<i32> = pod
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .map(|p| p.container_port)
        .collect();
    assert!(!declared.contains(&i32::from(loopback.port())), "{declared:?}");
}

/// The platform's convention for metrics of a host-network pod: kube-rbac-proxy with TLS on
/// the node's address, forwarding to the loopback listener only what the API server
/// authorizes as `get` on this DaemonSet's `prometheus-metrics` subresource.
#[test]
fn kube_rbac_proxy_guards_the_metrics() {
    let ds = daemonset("two-classes");
    let pod = pod(&ds);
    let proxy = proxy(&pod);
    assert_eq!(
        proxy.image.as_deref(),
        Some(format!("{STUB_REGISTRY}@{}", stub_digest("kubeRbacProxy")).as_str()),
        "the image is the platform's common kube-rbac-proxy"
    );
    let args = proxy.args.clone().unwrap();
    assert!(
        args.contains(&format!(
            "--secure-listen-address=$(KUBE_RBAC_PROXY_LISTEN_ADDRESS):{PROXY_PORT}"
        )),
        "{args:?}"
    );
    assert!(!args.iter().any(|a| a.starts_with("--insecure-listen-address")), "{args:?}");
    assert_eq!(ports(&proxy), [("metrics".into(), PROXY_PORT, Some(PROXY_PORT), "TCP".into())]);

    let env = env_json(&proxy);
    assert_eq!(
        env[0],
        json!({"name": "KUBE_RBAC_PROXY_LISTEN_ADDRESS",
               "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}),
        "the node's address (host network)"
    );
    assert_eq!(env[1]["name"], "KUBE_RBAC_PROXY_CONFIG");
    assert_eq!(env.len(), 2);
    let config: Value = serde_norway::from_str(env[1]["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        config,
        json!({"upstreams": [{
            "upstream": format!("http://{LOOPBACK_HTTP}/"),
            "path": "/",
            "authorization": {"resourceAttributes": {
                "namespace": module::NAMESPACE,
                "apiGroup": "apps",
                "apiVersion": "v1",
                "resource": "daemonsets",
                "subresource": "prometheus-metrics",
                "name": module::SPEAKER_APP,
            }},
        }]})
    );

    let security = proxy.security_context.clone().unwrap();
    assert_eq!(
        (security.run_as_non_root, security.run_as_user, security.run_as_group),
        (Some(true), Some(64535), Some(64535)),
        "the proxy needs no root"
    );
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_ne!(security.privileged, Some(true));
    let capabilities = security.capabilities.unwrap();
    assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    assert!(capabilities.add.is_none(), "no capability");
    assert_eq!(security.seccomp_profile.map(|p| p.type_).as_deref(), Some("RuntimeDefault"));
    let requests = proxy.resources.clone().unwrap().requests.unwrap();
    for resource in ["cpu", "memory", "ephemeral-storage"] {
        assert!(requests.contains_key(resource), "no {resource} request");
    }
    for probe in [&proxy.liveness_probe, &proxy.readiness_probe] {
        let socket = probe.clone().unwrap().tcp_socket.expect("a TCP probe");
        assert_eq!(serde_json::to_value(&socket.port).unwrap(), "metrics");
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
    let policies = vpa["spec"]["resourcePolicy"]["containerPolicies"].as_array().unwrap();
    let names: Vec<&str> = policies.iter().map(|p| p["containerName"].as_str().unwrap()).collect();
    assert_eq!(names, ["speaker", "kube-rbac-proxy"], "one policy per container");
    for policy in policies {
        for bound in ["minAllowed", "maxAllowed"] {
            for resource in ["cpu", "memory"] {
                assert!(policy[bound][resource].is_string(), "{bound}.{resource}");
            }
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
    // Through kube-rbac-proxy: TLS (its certificate is self-signed) and the token of the
    // platform's Prometheus, which rbac-to-us.yaml authorizes.
    assert_eq!(endpoint["scheme"], "https");
    assert_eq!(endpoint["bearerTokenSecret"], json!({"name": "prometheus-token", "key": "token"}));
    assert_eq!(endpoint["tlsConfig"], json!({"insecureSkipVerify": true}));
    assert_eq!(monitor["spec"]["jobLabel"], labels::APP, "job stays l2lb-speaker for the alerts");
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

    let mut values = scenario("two-classes").values();
    values["global"]["modulesImages"]["digests"]["common"] = json!({});
    let error = chart().render(&values, &release).unwrap_err();
    assert!(
        crate::error_chain(&error).contains("no digest for the common image kubeRbacProxy"),
        "{error}"
    );
}
