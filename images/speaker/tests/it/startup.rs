//! Start-up failures: clear message, non-zero exit, no panic.

use std::process::{Command, Output};

use anyhow::Result;

use crate::lab::Lab;

const BIN: &str = env!("CARGO_BIN_EXE_metallb-speaker");

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_clean_failure(out: &Output, expected: &[&str]) {
    let text = stderr(out);
    assert!(!out.status.success(), "should fail: {text}");
    assert!(!text.contains("panicked"), "must not panic: {text}");
    for needle in expected {
        assert!(text.contains(needle), "missing {needle:?} in: {text}");
    }
}

#[test]
fn kubernetes_source_without_a_cluster_fails_clearly() -> Result<()> {
    let out = Command::new(BIN)
        .args(["--node-name", "n", "--source", "kubernetes", "--metrics-addr", "127.0.0.1:0"])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()?;
    assert_clean_failure(
        &out,
        &["cannot configure the Kubernetes client", "/nonexistent/kubeconfig"],
    );
    Ok(())
}

#[test]
fn node_name_is_required() -> Result<()> {
    let out = Command::new(BIN)
        .args(["--source", "file:/nonexistent"])
        .env_remove("METALLB_NODE_NAME")
        .output()?;
    assert_clean_failure(&out, &["--node-name"]);
    Ok(())
}

#[test]
fn flags_come_from_the_environment() -> Result<()> {
    // Everything from METALLB_* variables; the missing file then fails the first load.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("absent.yaml");
    let out = Command::new(BIN)
        .env("METALLB_NODE_NAME", "n")
        .env("METALLB_SOURCE", format!("file:{}", path.display()))
        .env("METALLB_METRICS_ADDR", "127.0.0.1:0")
        .env("METALLB_LOG_FORMAT", "text")
        .output()?;
    assert_clean_failure(&out, &["cannot read", "absent.yaml"]);
    Ok(())
}

#[test]
fn a_missing_interface_fails_clearly() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.yaml");
    std::fs::write(
        &path,
        "classes: {front: {interfaces: [nosuch0]}}\naddresses: [{ip: 192.0.2.10, node: n, class: front}]\n",
    )?;
    let out = Command::new(BIN)
        .args(["--node-name", "n", "--metrics-addr", "127.0.0.1:0", "--log-format", "text"])
        .arg("--source")
        .arg(format!("file:{}", path.display()))
        .output()?;
    assert_clean_failure(&out, &["do not exist on this node", "nosuch0"]);
    Ok(())
}

#[test]
fn without_cap_net_raw_fails_clearly() -> Result<()> {
    let Some(mut lab) = Lab::new("nocap") else {
        return Ok(());
    };
    // An interface for the speaker to open, inside a namespace of its own.
    lab.add_host("a", "eth0", &[])?;
    let state = lab.write_state("state.yaml", "addresses: [{ip: 192.0.2.10, node: a}]\n")?;
    let ns = lab.ns("a");
    let source = format!("file:{}", state.display());
    // Dropping NET_RAW from the bounding set removes it even from root after exec.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "setpriv",
            "--bounding-set",
            "-net_raw",
            "--inh-caps",
            "-net_raw",
            BIN,
        ])
        .args(["--node-name", "a", "--source", &source, "--log-format", "text"])
        .output()?;
    assert_clean_failure(&out, &["CAP_NET_RAW", "eth0"]);
    lab.passed("without_cap_net_raw_fails_clearly");
    Ok(())
}
