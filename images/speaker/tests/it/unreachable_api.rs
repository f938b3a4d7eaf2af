//! The real binary with `--source kubernetes` (L2 and BGP mode) and an API server that refuses
//! connections: the speaker keeps running, is not ready (it has no complete view to announce from), and
//! counts the failed lists per kind. Needs no privileges: packet sockets open only after the
//! first complete view. The API URL is `https`, so the TLS stack (rustls with ring) is built as
//! in a cluster.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const BIN: &str = env!("CARGO_BIN_EXE_metallb-speaker");

/// Bound of the wait for the first counted error; the client fails in milliseconds and the
/// watcher retries within a second, so this only turns a hang into a failure.
const DEADLINE: Duration = Duration::from_secs(10);

/// Kills the speaker even when an assertion fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nobody listens on: bound, then released.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn get(addr: SocketAddr, path: &str) -> Result<(String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").context("an HTTP response")?;
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, body.to_owned()))
}

fn series(body: &str, name: &str) -> Option<f64> {
    body.lines().find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
}

#[test]
fn an_unreachable_api_leaves_the_speaker_running_unready_and_counting() -> Result<()> {
    unreachable_api(&[], &["SDNInternalL2LBService", "MetalLoadBalancerClass"])
}

/// BGP mode: the same, for its four watchers.
#[test]
fn an_unreachable_api_leaves_the_bgp_speaker_running_unready_and_counting() -> Result<()> {
    unreachable_api(
        &["--mode", "bgp"],
        &[
            "SDNInternalBGPAnnouncement",
            "MetalLoadBalancerBGPPeer",
            "MetalLoadBalancerPool",
            "Secret",
        ],
    )
}

/// Runs the speaker with `args` against an API server nobody listens on and checks that every
/// kind of `kinds` counts a watch error while the speaker stays up and unready.
fn unreachable_api(args: &[&str], kinds: &[&str]) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    let api = free_port()?;
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
             clusters: [{{name: test, cluster: {{server: 'https://127.0.0.1:{api}', insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: test, user: {{token: test}}}}]\n\
             contexts: [{{name: test, context: {{cluster: test, user: test, namespace: d8-metallb}}}}]\n"
        ),
    )?;
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut speaker = Running(
        Command::new(BIN)
            .args(["--node-name", "a", "--source", "kubernetes", "--log-format", "text"])
            .args(args)
            .arg("--metrics-addr")
            .arg(metrics.to_string())
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let errors = |kind: &str| format!("metallb_speaker_watch_errors_total{{kind=\"{kind}\"}}");
    let start = Instant::now();
    let body = loop {
        if let Some(status) = speaker.0.try_wait()? {
            bail!("the speaker exited ({status}) instead of retrying");
        }
        if let Ok((_, body)) = get(metrics, "/metrics")
            && kinds.iter().all(|kind| series(&body, &errors(kind)).is_some_and(|n| n >= 1.0))
        {
            break body;
        }
        if start.elapsed() > DEADLINE {
            bail!("no watch error counted for each of {kinds:?} within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(series(&body, "metallb_speaker_source_loads_total"), Some(0.0), "{body}");
    let (status, _) = get(metrics, "/readyz")?;
    assert!(status.contains("503"), "not ready without a complete view: {status}");
    let (status, _) = get(metrics, "/healthz")?;
    assert!(status.contains("200"), "alive: {status}");
    assert!(speaker.0.try_wait()?.is_none(), "still running");
    Ok(())
}
