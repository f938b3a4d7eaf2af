//! The BGP speaker: nothing of it renders without a configuration; with one, its DaemonSet
//! (same image as the L2 speaker, `--mode bgp`, no capability, loopback metrics behind
//! kube-rbac-proxy), least-privilege RBAC, VPA and PodMonitor, and ports that never collide
//! with the L2 speaker's on a node running both.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use helmrender::openapi::{STUB_REGISTRY, stub_digest};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use metallb_api::names::{labels, module};
use serde_json::{Value, json};

use crate::{SCENARIOS, id, of_kind, scenario};

const APP: &str = module::BGP_SPEAKER_APP;
/// The speaker's loopback HTTP listener (metrics and health).
const LOOPBACK_HTTP: &str = "127.0.0.1:4230";
/// kube-rbac-proxy's host port.
const PROXY_PORT: i32 = 4229;
const CLUSTER_ROLE: &str = "d8:metallb:bgp:speaker";
const ROLE: &str = "bgp:speaker";
const METRICS_ACCESS: &str = "access-to-metallb-bgp-speaker-metrics";

/// Every object of the BGP speaker, as `kind/namespace/name`.
fn bgp_objects() -> BTreeSet<String> {
    [
        "VerticalPodAutoscaler/d8-metallb/bgp-speaker",
        "DaemonSet/d8-metallb/bgp-speaker",
        "ServiceAccount/d8-metallb/bgp-speaker",
        "ClusterRole//d8:metallb:bgp:speaker",
        "ClusterRoleBinding//d8:metallb:bgp:speaker",
        "ClusterRoleBinding//d8:metallb:bgp:speaker:rbac-proxy",
        "Role/d8-metallb/bgp:speaker",
        "RoleBinding/d8-metallb/bgp:speaker",
        "Role/d8-metallb/access-to-metallb-bgp-speaker-metrics",
        "RoleBinding/d8-metallb/access-to-metallb-bgp-speaker-metrics",
        "PodMonitor/d8-monitoring/bgp-speaker",
    ]
    .map(String::from)
    .into()
}

/// An object belongs to the BGP speaker when it carries its `app` label.
fn is_bgp(object: &Value) -> bool {
    object["metadata"]["labels"][labels::APP] == APP
}

#[test]
fn nothing_bgp_renders_without_a_configuration_and_everything_with_one() {
    for scenario in SCENARIOS {
        let objects = scenario.objects();
        let rendered: BTreeSet<String> = objects.iter().filter(|o| is_bgp(o)).map(id).collect();
        if scenario.bgp {
            assert_eq!(rendered, bgp_objects(), "{}", scenario.name);
        } else {
            assert_eq!(rendered, BTreeSet::new(), "{}", scenario.name);
            // The alert rules (a BGP group among them) render always, as every rule file.
            let always = ["PrometheusRule", "GrafanaDashboardDefinition"];
            for object in objects.iter().filter(|o| !always.contains(&o["kind"].as_str().unwrap()))
            {
                let name = object["metadata"]["name"].as_str().unwrap();
                assert!(
                    !name.contains("bgp"),
                    "{}: {} without a configuration",
                    scenario.name,
                    id(object)
                );
            }
        }
    }
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// `(apiGroup, resource, verbs)` of every rule of a role, flattened and sorted.
fn grants(role: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        assert!(rule.get("resourceNames").is_none(), "{}: no resourceNames here", id(role));
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

/// What `images/speaker/README.md` says the BGP mode's Kubernetes source needs, and nothing
/// else: reads cluster-wide, one status write, Secrets only in the module's namespace.
#[test]
fn the_bgp_speaker_gets_exactly_what_its_source_needs() {
    let objects = scenario("bgp-configuration").objects();
    let read = "get,list,watch".to_owned();
    let grant = |group: &str, resource: &str, verbs: &str| {
        (group.to_owned(), resource.to_owned(), verbs.to_owned())
    };
    assert_eq!(
        grants(named(&objects, "ClusterRole", CLUSTER_ROLE)),
        [
            grant("internal.network.deckhouse.io", "sdninternalbgpannouncements", &read),
            grant("network.deckhouse.io", "metalloadbalancerbgppeers", &read),
            grant("network.deckhouse.io", "metalloadbalancerbgppeers/status", "patch"),
            grant("network.deckhouse.io", "metalloadbalancerpools", &read),
        ]
    );
    let role = named(&objects, "Role", ROLE);
    assert_eq!(role["metadata"]["namespace"], module::NAMESPACE);
    assert_eq!(grants(role), [grant("", "secrets", &read)]);

    // Over every role bound to the BGP speaker's account: the only write is the peers'
    // status, and Secrets are never granted cluster-wide.
    let account = json!({"kind": "ServiceAccount", "name": APP, "namespace": module::NAMESPACE});
    let mut bound = 0;
    for binding_kind in ["ClusterRoleBinding", "RoleBinding"] {
        for binding in of_kind(&objects, binding_kind) {
            let subjects = binding["subjects"].as_array().unwrap();
            if !subjects.contains(&account) {
                continue;
            }
            assert_eq!(subjects.len(), 1, "{}: the BGP speaker alone", id(binding));
            let role_kind = binding["roleRef"]["kind"].as_str().unwrap();
            let role_name = binding["roleRef"]["name"].as_str().unwrap();
            if role_name == "d8:rbac-proxy" {
                assert_eq!(binding["metadata"]["name"], "d8:metallb:bgp:speaker:rbac-proxy");
                continue;
            }
            bound += 1;
            let role = named(&objects, role_kind, role_name);
            for (group, resource, verbs) in grants(role) {
                for verb in verbs.split(',') {
                    let allowed = matches!(verb, "get" | "list" | "watch")
                        || (verb == "patch" && resource == "metalloadbalancerbgppeers/status");
                    assert!(allowed, "{}: {verb} on {group}/{resource}", id(role));
                }
                if resource == "secrets" {
                    assert_eq!(role_kind, "Role", "Secrets only in the module's namespace");
                    assert_eq!(role["metadata"]["namespace"], module::NAMESPACE);
                    assert_eq!(binding["metadata"]["namespace"], module::NAMESPACE);
                }
            }
        }
    }
    assert_eq!(bound, 2, "the ClusterRole and the Role");
}

/// Only the platform's Prometheus reads the BGP speakers' metrics, with exactly the
/// attributes the proxy asks about.
#[test]
fn only_prometheus_reads_the_bgp_speaker_metrics() {
    let objects = scenario("bgp-configuration").objects();
    let role = named(&objects, "Role", METRICS_ACCESS);
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": ["apps"], "resources": ["daemonsets/prometheus-metrics"],
                "resourceNames": [APP], "verbs": ["get"]}])
    );
    let binding = named(&objects, "RoleBinding", METRICS_ACCESS);
    assert_eq!(binding["roleRef"]["name"], METRICS_ACCESS);
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "prometheus", "namespace": "d8-monitoring"}])
    );
    let config = proxy_config(&proxy(&pod(&daemonset("bgp-configuration"))));
    assert_eq!(
        config["upstreams"][0]["authorization"]["resourceAttributes"],
        json!({"namespace": module::NAMESPACE, "apiGroup": "apps", "apiVersion": "v1",
               "resource": "daemonsets", "subresource": "prometheus-metrics", "name": APP})
    );
}

fn daemonset_named(scenario_name: &str, name: &str) -> DaemonSet {
    let objects = scenario(scenario_name).objects();
    serde_json::from_value(named(&objects, "DaemonSet", name).clone()).unwrap()
}

fn daemonset(scenario_name: &str) -> DaemonSet {
    daemonset_named(scenario_name, APP)
}

fn pod(daemonset: &DaemonSet) -> PodSpec {
    daemonset.spec.clone().template.spec.unwrap()
}

fn container(pod: &PodSpec, name: &str) -> Container {
    let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["speaker", "kube-rbac-proxy"]);
    assert!(pod.init_containers.is_none());
    pod.containers.iter().find(|c| c.name == name).unwrap().clone()
}

fn speaker(pod: &PodSpec) -> Container {
    container(pod, "speaker")
}

fn proxy(pod: &PodSpec) -> Container {
    container(pod, "kube-rbac-proxy")
}

fn env_json(container: &Container) -> Vec<Value> {
    container.env.iter().flatten().map(|e| serde_json::to_value(e).unwrap()).collect()
}

fn proxy_config(proxy: &Container) -> Value {
    let env = env_json(proxy);
    let config = env.iter().find(|e| e["name"] == "KUBE_RBAC_PROXY_CONFIG").unwrap();
    serde_norway::from_str(config["value"].as_str().unwrap()).unwrap()
}

#[test]
fn the_daemonset_runs_the_speaker_binary_in_bgp_mode_on_member_nodes() {
    let ds = daemonset("bgp-configuration");
    assert_eq!(ds.metadata.namespace.as_deref(), Some(module::NAMESPACE));
    let spec = ds.spec.clone();
    let app = std::collections::BTreeMap::from([(labels::APP.to_owned(), APP.to_owned())]);
    assert_eq!(spec.selector.match_labels.as_ref(), Some(&app));
    assert_eq!(spec.template.metadata.unwrap().labels.as_ref(), Some(&app));

    let pod = pod(&ds);
    let member = std::collections::BTreeMap::from([(labels::BGP_MEMBER.to_owned(), String::new())]);
    assert_eq!(pod.node_selector.as_ref(), Some(&member));
    assert_eq!(pod.service_account_name.as_deref(), Some(APP));
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    assert_eq!(pod.priority_class_name.as_deref(), Some("system-node-critical"));

    let container = speaker(&pod);
    // The same image (and so binary) as the L2 speaker.
    assert_eq!(
        container.image.as_deref(),
        Some(format!("{STUB_REGISTRY}@{}", stub_digest("speaker")).as_str())
    );
    let args = container.args.clone().unwrap();
    assert_eq!(args[..4], ["--mode", "bgp", "--source", "kubernetes"].map(String::from));
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
    let value = |name: &str, value: &str| json!({"name": name, "value": value});
    assert_eq!(
        env_json(&container),
        [
            field("METALLB_NODE_NAME", "spec.nodeName"),
            field("METALLB_POD_NAME", "metadata.name"),
            field("METALLB_NAMESPACE", "metadata.namespace"),
            value("METALLB_METRICS_ADDR", LOOPBACK_HTTP),
            value("METALLB_LOG_FORMAT", "json"),
        ]
    );
    assert!(container.ports.is_none(), "BGP connects out; BFD's fixed port is not declared");
    assert!(container.volume_mounts.is_none() && pod.volumes.is_none(), "no gossip key");

    // The kubelet's grace covers the graceful shutdown and a margin.
    let grace = args
        .iter()
        .position(|a| a == "--bgp-shutdown-grace")
        .map(|i| args[i + 1].trim_end_matches('s').parse::<u64>().unwrap())
        .map_or(Duration::from_secs(5), Duration::from_secs);
    let termination = pod.termination_grace_period_seconds.unwrap();
    assert!(
        Duration::from_secs(u64::try_from(termination).unwrap()) >= grace + Duration::from_secs(5),
        "{termination} s for a {grace:?} graceful shutdown"
    );
    assert!(termination <= 30, "drains stay fast");
}

/// No capability at all (no NET_RAW: BGP mode opens no raw socket), so no root either.
#[test]
fn the_bgp_speaker_needs_no_capability_and_no_root() {
    let pod = pod(&daemonset("bgp-configuration"));
    let pod_security = pod.security_context.clone().unwrap();
    assert_eq!(
        (pod_security.run_as_non_root, pod_security.run_as_user, pod_security.run_as_group),
        (Some(true), Some(64535), Some(64535))
    );
    assert_eq!(pod_security.seccomp_profile.map(|p| p.type_).as_deref(), Some("RuntimeDefault"));
    for container in &pod.containers {
        let security = container.security_context.clone().unwrap();
        assert_ne!(security.run_as_user, Some(0), "{}", container.name);
        assert_eq!(security.read_only_root_filesystem, Some(true), "{}", container.name);
        assert_eq!(security.allow_privilege_escalation, Some(false), "{}", container.name);
        assert_ne!(security.privileged, Some(true), "{}", container.name);
        let capabilities = security.capabilities.unwrap();
        assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_owned()][..]));
        assert!(capabilities.add.is_none(), "{}: no capability, NET_RAW least", container.name);
        let requests = container.resources.clone().unwrap().requests.unwrap();
        for resource in ["cpu", "memory", "ephemeral-storage"] {
            assert!(requests.contains_key(resource), "{}: no {resource}", container.name);
        }
    }
}

/// Metrics and health on loopback; the network reaches them only through kube-rbac-proxy.
#[test]
fn metrics_are_on_loopback_behind_kube_rbac_proxy() {
    let pod = pod(&daemonset("bgp-configuration"));
    let loopback: SocketAddr = LOOPBACK_HTTP.parse().unwrap();
    let container = speaker(&pod);
    for (probe, path) in
        [(&container.liveness_probe, "/healthz"), (&container.readiness_probe, "/readyz")]
    {
        let get = probe.clone().unwrap().http_get.expect("an HTTP probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.host.as_deref(), Some(loopback.ip().to_string().as_str()));
        assert_eq!(serde_json::to_value(&get.port).unwrap(), loopback.port());
    }
    let proxy = proxy(&pod);
    assert_eq!(
        proxy.image.as_deref(),
        Some(format!("{STUB_REGISTRY}@{}", stub_digest("kubeRbacProxy")).as_str())
    );
    let args = proxy.args.clone().unwrap();
    assert!(args.contains(&format!(
        "--secure-listen-address=$(KUBE_RBAC_PROXY_LISTEN_ADDRESS):{PROXY_PORT}"
    )));
    assert!(!args.iter().any(|a| a.starts_with("--insecure-listen-address")));
    let ports = proxy.ports.clone().unwrap_or_default();
    let [port] = &ports[..] else { panic!("one port") };
    assert_eq!(
        (port.name.as_deref(), port.container_port, port.host_port, port.protocol.as_deref()),
        (Some("metrics"), PROXY_PORT, Some(PROXY_PORT), Some("TCP"))
    );
    assert_eq!(
        env_json(&proxy)[0],
        json!({"name": "KUBE_RBAC_PROXY_LISTEN_ADDRESS",
               "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    );
    assert_eq!(
        proxy_config(&proxy)["upstreams"][0]["upstream"],
        format!("http://{LOOPBACK_HTTP}/")
    );
    for probe in [&proxy.liveness_probe, &proxy.readiness_probe] {
        assert!(probe.clone().unwrap().tcp_socket.is_some());
    }
}

/// Every port a DaemonSet takes on its node: declared host ports, and the loopback ports of
/// its probes, metrics addresses and proxy upstreams.
fn node_ports(ds: &DaemonSet) -> BTreeSet<u16> {
    let pod = pod(ds);
    let mut ports = BTreeSet::new();
    for container in &pod.containers {
        for port in container.ports.iter().flatten() {
            ports.insert(u16::try_from(port.host_port.unwrap()).unwrap());
        }
        for probe in [&container.liveness_probe, &container.readiness_probe] {
            if let Some(get) = probe.as_ref().and_then(|p| p.http_get.as_ref()) {
                ports.insert(
                    serde_json::from_value(serde_json::to_value(&get.port).unwrap()).unwrap(),
                );
            }
        }
        for env in env_json(container) {
            if env["name"].as_str().unwrap().ends_with("METRICS_ADDR") {
                ports.insert(env["value"].as_str().unwrap().parse::<SocketAddr>().unwrap().port());
            }
        }
    }
    ports
}

/// Both DaemonSets may run on one node: their ports never meet, stay in the platform's range
/// and avoid the previous module's (4218 and 4220 of its BGP speaker, 4225 of its L2 speaker).
#[test]
fn the_two_speakers_share_a_node_without_a_port_clash() {
    let l2 = node_ports(&daemonset_named("l2-and-bgp", module::SPEAKER_APP));
    let bgp = node_ports(&daemonset_named("l2-and-bgp", APP));
    assert_eq!(bgp, [4229, 4230].into());
    assert!(l2.is_disjoint(&bgp), "L2 {l2:?}, BGP {bgp:?}");
    for port in l2.iter().chain(&bgp) {
        assert!((4200..=4299).contains(port), "{port}");
        assert!(![4218, 4220, 4225].contains(port), "{port} of the previous module");
    }
}

/// The same placement as the L2 speaker: its tolerations, the settings' included.
#[test]
fn tolerations_are_the_l2_speakers() {
    let l2 = pod(&daemonset_named("l2-and-bgp", module::SPEAKER_APP)).tolerations;
    let bgp = pod(&daemonset_named("l2-and-bgp", APP)).tolerations;
    assert!(l2.as_ref().is_some_and(|t| t.len() > 9), "with the settings' tolerations");
    assert_eq!(bgp, l2);
}

#[test]
fn the_vpa_and_the_pod_monitor_follow_the_bgp_daemonset() {
    let objects = scenario("bgp-configuration").objects();
    let vpa = named(&objects, "VerticalPodAutoscaler", APP);
    assert_eq!(
        vpa["spec"]["targetRef"],
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": APP})
    );
    assert_eq!(vpa["spec"]["updatePolicy"]["updateMode"], "Initial");
    let policies = vpa["spec"]["resourcePolicy"]["containerPolicies"].as_array().unwrap();
    let names: Vec<&str> = policies.iter().map(|p| p["containerName"].as_str().unwrap()).collect();
    assert_eq!(names, ["speaker", "kube-rbac-proxy"]);
    for policy in policies {
        for bound in ["minAllowed", "maxAllowed"] {
            for resource in ["cpu", "memory"] {
                assert!(policy[bound][resource].is_string(), "{bound}.{resource}");
            }
        }
    }
    let monitor = named(&objects, "PodMonitor", APP);
    assert_eq!(monitor["metadata"]["namespace"], "d8-monitoring");
    assert_eq!(monitor["metadata"]["labels"]["prometheus"], "main");
    assert_eq!(monitor["spec"]["selector"]["matchLabels"], json!({labels::APP: APP}));
    assert_eq!(monitor["spec"]["namespaceSelector"]["matchNames"], json!([module::NAMESPACE]));
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["port"], "metrics");
    assert_eq!(endpoint["scheme"], "https");
    assert_eq!(endpoint["bearerTokenSecret"], json!({"name": "prometheus-token", "key": "token"}));
    assert_eq!(endpoint["tlsConfig"], json!({"insecureSkipVerify": true}));
}
