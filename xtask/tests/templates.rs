//! The lint of rendered templates (`addon-operator.md` §7 container, RBAC and object rules),
//! checked on a copy of the module and on copies with broken templates.

mod common;

use std::path::Path;

use common::copy_recursively;
use xtask::{lint, repo_root};

/// Copies what the lint reads into `dest`: module metadata, schemas, CRDs and the chart. The
/// lint only needs the names of `images/*` (for the image digests), not their sources.
fn copy_module(dest: &Path) {
    let root = repo_root();
    for entry in [
        "module.yaml",
        "Chart.yaml",
        ".helmignore",
        ".dmtlint.yaml",
        "crds",
        "openapi",
        "templates",
        "monitoring",
    ] {
        copy_recursively(&root.join(entry), &dest.join(entry));
    }
    std::fs::create_dir_all(dest.join("images/speaker")).unwrap();
}

/// Replaces `from` (which must occur) with `to` in the file at `path`.
fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// The findings about files under `templates/`, as `file: message` lines.
fn template_findings(root: &Path) -> Vec<String> {
    lint::run(root)
        .unwrap()
        .iter()
        .filter(|f| f.file.starts_with("templates"))
        .map(ToString::to_string)
        .collect()
}

fn assert_reported(findings: &[String], file: &str, needle: &str) {
    assert!(
        findings.iter().any(|f| f.starts_with(file) && f.contains(needle)),
        "no finding in {file} containing {needle:?}; findings:\n{}",
        findings.join("\n")
    );
}

#[test]
fn the_module_chart_follows_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    copy_module(dir.path());
    assert_eq!(template_findings(dir.path()), Vec::<String>::new());
}

#[test]
fn a_weakened_speaker_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    copy_module(dir.path());
    let daemonset = dir.path().join("templates/l2lb/speaker/daemonset.yaml");
    edit(&daemonset, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false");
    edit(&daemonset, r#"drop: ["ALL"]"#, r#"drop: ["NET_ADMIN"]"#);
    edit(&daemonset, "privileged: false", "privileged: true");
    edit(&daemonset, "priorityClassName: system-node-critical", "priorityClassName: important");
    edit(&daemonset, "dnsPolicy: ClusterFirstWithHostNet", "dnsPolicy: ClusterFirst");
    edit(
        &daemonset,
        "containerPort: 4227\n              hostPort: 4227",
        "containerPort: 9100\n              hostPort: 9100",
    );
    edit(
        &daemonset,
        r#"{{ include "helm_lib_module_image" (list . "speaker") }}"#,
        "speaker:latest",
    );
    edit(&daemonset, "              ephemeral-storage: 50Mi\n", "");
    edit(&daemonset, "          readinessProbe:", "          startupProbe:");
    let rbac = dir.path().join("templates/l2lb/speaker/rbac-for-us.yaml");
    edit(&rbac, r#"resources: ["pods"]"#, r#"resources: ["*"]"#);

    let findings = template_findings(dir.path());
    let ds = "templates/l2lb/speaker/daemonset.yaml";
    for needle in [
        "readOnlyRootFilesystem must be true",
        "capabilities must drop ALL",
        "must not be privileged",
        "priorityClassName Some(\"important\")",
        "dnsPolicy ClusterFirstWithHostNet",
        "host-network port 9100 must be in 4200-4299",
        "image must come from helm_lib_module_image",
        "no ephemeral-storage request",
        "readinessProbe must have exactly one handler",
    ] {
        assert_reported(&findings, ds, needle);
    }
    assert_reported(&findings, "templates/l2lb/speaker/rbac-for-us.yaml", "`*` in resources");
}

/// The speaker's HTTP back on the node's address (as before kube-rbac-proxy), and a proxy that
/// would pass requests without TLS to a non-loopback upstream under another object's name.
#[test]
fn metrics_open_on_the_node_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    copy_module(dir.path());
    let daemonset = dir.path().join("templates/l2lb/speaker/daemonset.yaml");
    edit(&daemonset, r#"value: "127.0.0.1:4228""#, r#"value: "$(HOST_IP):4228""#);
    edit(
        &daemonset,
        "              hostPort: 4226\n              protocol: UDP\n",
        "              hostPort: 4226\n              protocol: UDP\n            - name: http\n              containerPort: 4228\n              hostPort: 4228\n",
    );
    edit(
        &daemonset,
        "              host: 127.0.0.1\n              path: /healthz",
        "              path: /healthz",
    );
    edit(&daemonset, "--secure-listen-address=", "--insecure-listen-address=");
    edit(&daemonset, "upstream: http://127.0.0.1:4228/", "upstream: http://10.0.0.1:4228/");
    edit(&daemonset, "name: l2lb-speaker\n          ports:", "name: other\n          ports:");

    let findings = template_findings(dir.path());
    let ds = "templates/l2lb/speaker/daemonset.yaml";
    for needle in [
        "container speaker: TCP port 4228 is open on the node's network",
        "container speaker: livenessProbe reaches HTTP on the node's address",
        "container speaker: env METALLB_METRICS_ADDR must be a loopback address",
        "container kube-rbac-proxy: kube-rbac-proxy needs --secure-listen-address",
        "container kube-rbac-proxy: kube-rbac-proxy must not listen without TLS",
        r#"container kube-rbac-proxy: upstream "http://10.0.0.1:4228/" must be on loopback"#,
        "must authorize with resourceAttributes",
    ] {
        assert_reported(&findings, ds, needle);
    }
    // The readiness probe still goes to loopback and is not reported.
    assert!(!findings.iter().any(|f| f.contains("readinessProbe reaches")), "{findings:?}");
}

/// The BGP speaker is rendered by the lint (the internal values' examples have a
/// configuration) and held to the same rules, plus what it must never become: root without a
/// capability to keep, a capability beyond NET_RAW, a loopback listener outside the platform's
/// range, or a port the L2 speaker takes on the node they share.
#[test]
fn a_weakened_bgp_speaker_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    copy_module(dir.path());
    let daemonset = dir.path().join("templates/bgp/speaker/daemonset.yaml");
    edit(
        &daemonset,
        "runAsNonRoot: true\n        runAsUser: 64535\n        runAsGroup: 64535",
        "runAsNonRoot: false\n        runAsUser: 0\n        runAsGroup: 0",
    );
    edit(
        &daemonset,
        "containerPort: 4229\n              hostPort: 4229",
        "containerPort: 4227\n              hostPort: 4227",
    );
    edit(&daemonset, r#"value: "127.0.0.1:4230""#, r#"value: "127.0.0.1:9090""#);

    let findings = template_findings(dir.path());
    let ds = "templates/bgp/speaker/daemonset.yaml";
    for needle in [
        "pod runs as root but no container adds a capability",
        "takes the node's port 4227/TCP, which DaemonSet d8-metallb/l2lb-speaker takes too",
        "takes the node's port 9090/TCP (host network), outside 4200-4299",
    ] {
        assert_reported(&findings, ds, needle);
    }

    // NET_ADMIN (or NET_RAW's friends) on the BGP speaker: only NET_RAW is ever added.
    let dir = tempfile::tempdir().unwrap();
    copy_module(dir.path());
    let daemonset = dir.path().join("templates/bgp/speaker/daemonset.yaml");
    edit(
        &daemonset,
        "drop: [\"ALL\"]\n            seccompProfile",
        "drop: [\"ALL\"]\n              add: [\"NET_ADMIN\"]\n            seccompProfile",
    );
    let findings = template_findings(dir.path());
    assert_reported(
        &findings,
        ds,
        "container speaker: adds the capability NET_ADMIN; only [\"NET_RAW\"] is ever needed",
    );
}

#[test]
fn a_bare_deployment_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    copy_module(dir.path());
    let bare = r#"apiVersion: extensions/v1beta1
kind: Deployment
metadata:
  name: extra
  namespace: d8-metallb
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx
          ports:
            - containerPort: 80
          env:
            - {name: A, value: x}
            - {name: A, value: y}
"#;
    std::fs::write(dir.path().join("templates/extra.yaml"), bare).unwrap();
    let findings = template_findings(dir.path());
    for needle in [
        "missing label `heritage: deckhouse`",
        "missing label `module: metallb`",
        "apiVersion must be apps/v1",
        "revisionHistoryLimit must be at most 2",
        "has no VerticalPodAutoscaler",
        "pod securityContext must be",
        "container web: has no securityContext",
        "port 80 must be above 1024",
        "env A is set twice",
        "livenessProbe must have exactly one handler",
    ] {
        assert_reported(&findings, "templates/extra.yaml", needle);
    }
}

#[test]
fn a_template_that_does_not_render_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    copy_module(dir.path());
    std::fs::write(dir.path().join("templates/broken.yaml"), "x: {{ .Values.metallb.nope }}\n")
        .unwrap();
    let findings = template_findings(dir.path());
    assert_reported(&findings, "templates", "render with settings example 0");
    assert_reported(&findings, "templates", "nope");
}
