//! Start-up: only bad flags and a missing capability are fatal (clear message, non-zero exit,
//! no panic); nothing in the desired state is.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

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

/// Kills the speaker even when an assertion fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Bound of the waits below: the speaker answers within milliseconds of starting.
const DEADLINE: Duration = Duration::from_secs(10);

fn get(addr: SocketAddr, path: &str) -> Result<(String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").context("an HTTP response")?;
    Ok((head.lines().next().unwrap_or_default().to_owned(), body.to_owned()))
}

#[test]
fn flags_come_from_the_environment_and_a_missing_state_file_is_not_fatal() -> Result<()> {
    // Everything from METALLB_* variables. The file is missing: counted, retried, not ready.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("absent.yaml");
    let metrics: SocketAddr =
        format!("127.0.0.1:{}", TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()).parse()?;
    let mut speaker = Running(
        Command::new(BIN)
            .env("METALLB_NODE_NAME", "n")
            .env("METALLB_SOURCE", format!("file:{}", path.display()))
            .env("METALLB_METRICS_ADDR", metrics.to_string())
            .env("METALLB_LOG_FORMAT", "text")
            .env("METALLB_SOURCE_POLL_INTERVAL", "100ms")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let start = Instant::now();
    loop {
        if let Some(status) = speaker.0.try_wait()? {
            bail!("the speaker exited ({status}) on a missing state file");
        }
        if let Ok((_, body)) = get(metrics, "/metrics")
            && body.contains("metallb_speaker_source_errors_total 1")
        {
            break;
        }
        if start.elapsed() > DEADLINE {
            bail!("no source error counted within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = get(metrics, "/readyz")?;
    assert!(status.contains("503"), "{status}");
    assert!(body.contains("no desired state"), "{body}");
    assert!(speaker.0.try_wait()?.is_none(), "still running");
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
