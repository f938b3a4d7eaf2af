//! Command line (every flag also from a `METALLB_*` environment variable) and the top-level
//! `run` the binary calls.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tokio::sync::{oneshot, watch};

use crate::announce::AnnounceConfig;
use crate::gossip::codec::KeyRing;
use crate::gossip::{Gossip, GossipConfig, Liveness};
use crate::interfaces::{DEFAULT_EXCLUDE, Pattern};
use crate::metrics::Metrics;
use crate::source::file::FileSource;
use crate::source::kubernetes::condition::{self, ConditionFeed};
use crate::source::kubernetes::{KubernetesSource, PeerFeed};
use crate::source::{Source, SourceError, SourceSpec, Updates};
use crate::speaker::{self, Config, Error};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    Text,
}

/// What the speaker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Layer 2: answer ARP and NDP for the addresses this node owns.
    L2,
    /// BGP: announce this node's addresses to the routers.
    Bgp,
}

/// A refresh period, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refresh(pub Option<Duration>);

/// The metallb L2 speaker: answers ARP and NDP for the load-balancer IPs this node owns.
#[derive(Debug, Clone, Parser)]
#[command(name = "metallb-speaker", version, about)]
pub struct Args {
    /// This node's name; the speaker announces the addresses whose `node` equals it.
    #[arg(long, env = "METALLB_NODE_NAME")]
    pub node_name: String,
    /// `l2` (ARP/NDP) or `bgp` (BGP sessions with the routers).
    #[arg(long, env = "METALLB_MODE", value_enum, default_value_t = Mode::L2)]
    pub mode: Mode,
    /// BGP mode: how long the sessions stay up with the GRACEFUL_SHUTDOWN community (RFC 8326)
    /// after SIGTERM, so routers move traffic to other nodes before the sessions close. Five
    /// seconds is well inside the kubelet's default 30 s grace period and more than routers
    /// need to re-run best-path selection.
    #[arg(long, env = "METALLB_BGP_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub bgp_shutdown_grace: Duration,
    /// Desired-state source: `kubernetes` (watch the module's objects through the in-cluster
    /// API, or the kubeconfig outside a cluster) or `file:PATH` (YAML or JSON, reloaded on
    /// change).
    #[arg(long, env = "METALLB_SOURCE", value_parser = parse_source)]
    pub source: SourceSpec,
    /// Address of the HTTP endpoint serving /metrics, /healthz and /readyz. Loopback by default:
    /// the speaker runs on the host network, where an open port is open to the whole segment.
    #[arg(long, env = "METALLB_METRICS_ADDR", default_value = "127.0.0.1:7472",
          value_parser = parse_host_port)]
    pub metrics_addr: SocketAddr,
    /// Log format.
    #[arg(long, env = "METALLB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Gratuitous ARP / unsolicited NA sent after acquiring an address (first one at once).
    #[arg(long, env = "METALLB_ANNOUNCE_COUNT", default_value_t = AnnounceConfig::default().count,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub announce_count: u32,
    /// Spacing of the announcement burst, e.g. `1100ms`, `2s`.
    #[arg(long, env = "METALLB_ANNOUNCE_INTERVAL", default_value = "1100ms", value_parser = parse_period)]
    pub announce_interval: Duration,
    /// Period of one more announcement for as long as an address is owned, e.g. `60s`; `off`
    /// disables it. Useful where switch FDB entries age out before the router's ARP entries
    /// (MetalLB #2910).
    #[arg(long, env = "METALLB_ANNOUNCE_REFRESH", default_value = "off", value_parser = parse_refresh)]
    pub announce_refresh: Refresh,
    /// Comma-separated interface name patterns (`*` wildcard) never chosen automatically;
    /// replaces the default list of CNI and virtual devices.
    #[arg(long, env = "METALLB_INTERFACE_EXCLUDE", value_delimiter = ',',
          default_values = DEFAULT_EXCLUDE)]
    pub interface_exclude: Vec<String>,
    /// How often interfaces are re-read, e.g. `2s`.
    #[arg(long, env = "METALLB_INTERFACE_RESCAN_INTERVAL", default_value = "2s", value_parser = parse_period)]
    pub interface_rescan_interval: Duration,
    /// How often the file source is re-read, e.g. `1s`.
    #[arg(long, env = "METALLB_SOURCE_POLL_INTERVAL", default_value = "1s", value_parser = parse_period)]
    pub source_poll_interval: Duration,
    /// UDP address of the gossip socket on the host network, e.g. `$(HOST_IP):4218` (the module
    /// uses a port in 4200–4299). Without it gossip is off: no liveness view, no take-overs.
    #[arg(long, env = "METALLB_GOSSIP_BIND", requires = "gossip_key_file",
          value_parser = parse_host_port)]
    pub gossip_bind: Option<SocketAddr>,
    /// Comma-separated static gossip peers `ADDR:PORT` to join through (this node's own address
    /// may be listed; it is skipped). With `--source kubernetes` the peers are the speaker pods
    /// of `--namespace` instead.
    #[arg(long, env = "METALLB_GOSSIP_PEERS", value_delimiter = ',', requires = "gossip_bind")]
    pub gossip_peers: Vec<SocketAddr>,
    /// File holding the raw gossip key (at least 16 bytes): the mounted `key` of the Secret
    /// `l2lb-speaker-gossip-key`. Files beside it named `<its name>.<suffix>` (other data
    /// keys of the Secret, e.g. `key.previous`) are accepted too: a key ring for rotation.
    /// Datagrams are sent with this file's key; the ring is re-read every 5 s.
    #[arg(long, env = "METALLB_GOSSIP_KEY_FILE")]
    pub gossip_key_file: Option<PathBuf>,
    /// This speaker's pod name (downward API), logged to identify the instance.
    #[arg(long, env = "METALLB_POD_NAME")]
    pub pod_name: Option<String>,
    /// This speaker's namespace (downward API): logged, and where `--source kubernetes` looks
    /// for the other speaker pods (L2) or the peers' password Secret copies (BGP) (default: the
    /// client's namespace, in a pod its own).
    #[arg(long, env = "METALLB_NAMESPACE")]
    pub namespace: Option<String>,
}

/// `IP:PORT`, with the IPv6 form either bracketed (`[2001:db8::1]:4226`) or bare
/// (`2001:db8::1:4226`, the last colon separating the port): the DaemonSet builds the value
/// from the downward API's host IP, which is never bracketed.
pub fn parse_host_port(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let bad = || format!("{text:?} is not IP:PORT");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let ip: IpAddr = host.parse().map_err(|_| bad())?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok(SocketAddr::new(ip, port))
}

fn parse_source(text: &str) -> Result<SourceSpec, String> {
    text.parse().map_err(|e: crate::source::SourceSpecError| e.to_string())
}

/// Parses `250ms`, `2s`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let value: u64 =
        number.parse().map_err(|_| format!("{text:?} is not a duration like 250ms, 2s, 5m"))?;
    let millis = match unit {
        "ms" => Some(value),
        "s" => value.checked_mul(1_000),
        "m" => value.checked_mul(60_000),
        "h" => value.checked_mul(3_600_000),
        _ => return Err(format!("{text:?}: unit must be ms, s, m or h")),
    };
    millis.map(Duration::from_millis).ok_or_else(|| format!("{text:?} is too long"))
}

/// A duration that must not be zero (it paces a timer).
fn parse_period(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err(format!("{text:?} must be greater than zero")),
        period => Ok(period),
    }
}

fn parse_refresh(text: &str) -> Result<Refresh, String> {
    if text == "off" {
        return Ok(Refresh(None));
    }
    parse_period(text).map(|p| Refresh(Some(p)))
}

/// Runs the speaker with `args` until SIGTERM/SIGINT (clean exit) or a fatal error.
pub async fn run(args: Args) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new());
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|source| Error::Metrics { addr: args.metrics_addr, source })?;
    tokio::spawn(crate::http::serve(listener, metrics.clone()));
    if args.mode == Mode::Bgp {
        return run_bgp(args, metrics).await;
    }

    tracing::info!(
        node = %args.node_name,
        pod = args.pod_name.as_deref().unwrap_or("-"),
        namespace = args.namespace.as_deref().unwrap_or("-"),
        "speaker starting"
    );
    // Bound before the data plane starts, so readiness implies the gossip socket is open.
    let (liveness, gossip) = match args.gossip_bind {
        Some(bind) => {
            let path = args.gossip_key_file.clone().unwrap_or_default();
            let keys = KeyRing::from_file(&path)?;
            let mut config =
                GossipConfig::new(args.node_name.clone(), bind, args.gossip_peers, keys);
            config.key_file = Some(path);
            let gossip = Gossip::bind(config, metrics.clone()).await?;
            (gossip.liveness(), Some(gossip))
        }
        None => {
            tracing::warn!("gossip is off (no --gossip-bind): no take-over by backups");
            (watch::channel(Arc::new(Liveness::everyone())).1, None)
        }
    };
    let mut config = Config {
        node_name: args.node_name,
        announce: AnnounceConfig {
            count: args.announce_count,
            interval: args.announce_interval,
            refresh: args.announce_refresh.0,
        },
        exclude: args
            .interface_exclude
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(Pattern::new)
            .collect(),
        rescan_interval: args.interface_rescan_interval,
        sys_class_net: PathBuf::from("/sys/class/net"),
        problems: None,
    };
    let (source, gossip) = match args.source {
        SourceSpec::File(path) => {
            (AnySource::File(FileSource::new(path, args.source_poll_interval)), gossip)
        }
        SourceSpec::Kubernetes => {
            let client = kube::Client::try_default().await.map_err(SourceError::KubeConfig)?;
            let namespace = args.namespace.unwrap_or_else(|| client.default_namespace().to_owned());
            // Peers come from the speaker pods; every speaker listens on the same port.
            let (feed, gossip) = match gossip {
                Some(gossip) => {
                    let port = gossip.local_addr().map_or(0, |a| a.port());
                    let (updates, seeds) = watch::channel(Vec::new());
                    (Some(PeerFeed { port, updates }), Some(gossip.with_seed_updates(seeds)))
                }
                None => (None, None),
            };
            // The children's NodeCanAnnounce condition: its own task, fed by the source (the
            // children of this node) and the data plane (the interface problems).
            let (children_tx, children) = watch::channel(None);
            let (problems_tx, problems) = watch::channel(None);
            config.problems = Some(Arc::new(problems_tx));
            let node = config.node_name.clone();
            tokio::spawn(condition::write(
                client.clone(),
                node.clone(),
                children,
                problems,
                metrics.clone(),
            ));
            let source = KubernetesSource::new(client, namespace, feed)
                .with_conditions(ConditionFeed { node, updates: children_tx });
            (AnySource::Kubernetes(source), gossip)
        }
    };
    let (stop, stopped) = oneshot::channel();
    let mut gossip_task = gossip.map(|g| tokio::spawn(g.run(stopped)));
    let gossip_ended = async {
        match gossip_task.as_mut() {
            Some(task) => match task.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(Error::Gossip(error)),
                Err(error) => Err(Error::GossipTask(error)),
            },
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        result = speaker::run(config, source, liveness, metrics) => result,
        result = gossip_ended => result,
        () = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    };
    // A stopping speaker says so, so that backups take over at once instead of after the
    // failure detection; bounded, as the kubelet's grace period is.
    let _ = stop.send(());
    if let Some(task) = gossip_task
        && !task.is_finished()
    {
        let _ = tokio::time::timeout(LEAVE_TIMEOUT, task).await;
    }
    result
}

/// BGP mode: the chosen source feeds `bgp::run`; with the Kubernetes source the session
/// entries of the peers' status are written too.
async fn run_bgp(args: Args, metrics: Arc<Metrics>) -> Result<(), Error> {
    let (feed, desired) = watch::channel(None);
    let options = crate::bgp::Options {
        tick: args.source_poll_interval,
        shutdown_grace: args.bgp_shutdown_grace,
    };
    let node = args.node_name;
    match args.source {
        SourceSpec::File(file) => {
            tracing::info!(%node, file = %file.display(), "speaker starting in BGP mode");
            let poll = args.source_poll_interval;
            tokio::spawn(crate::bgp::file::follow(file, node, poll, feed, metrics.clone()));
            crate::bgp::run(options, desired, None, metrics).await
        }
        SourceSpec::Kubernetes => {
            let client = kube::Client::try_default().await.map_err(SourceError::KubeConfig)?;
            let namespace = args.namespace.unwrap_or_else(|| client.default_namespace().to_owned());
            tracing::info!(%node, %namespace, "speaker starting in BGP mode with the Kubernetes source");
            let (own_entries, own) = watch::channel(std::collections::BTreeSet::new());
            let source = crate::bgp::kubernetes::Watch {
                client: client.clone(),
                node: node.clone(),
                namespace,
                own_entries,
            };
            tokio::spawn(source.follow(feed, metrics.clone()));
            let (status, sessions) = watch::channel(None);
            tokio::spawn(crate::bgp::status::write(client, node, sessions, own, metrics.clone()));
            crate::bgp::run(options, desired, Some(status), metrics).await
        }
    }
}

/// The source chosen by `--source`.
enum AnySource {
    File(FileSource),
    Kubernetes(KubernetesSource),
}

impl Source for AnySource {
    async fn run(self, updates: Updates, metrics: Arc<Metrics>) -> Result<(), SourceError> {
        match self {
            AnySource::File(source) => source.run(updates, metrics).await,
            AnySource::Kubernetes(source) => source.run(updates, metrics).await,
        }
    }
}

/// Upper bound of sending `leave`: a handful of UDP sends, which take microseconds.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        // Without a SIGTERM handler the default action still ends the process.
        Err(_) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1100ms"), Ok(Duration::from_millis(1100)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "10", "1.5s", "-1s", "3d", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_period("0s").is_err());
        assert_eq!(parse_refresh("off"), Ok(Refresh(None)));
        assert_eq!(parse_refresh("60s"), Ok(Refresh(Some(Duration::from_secs(60)))));
    }

    #[test]
    fn flags_and_defaults() {
        let args = Args::try_parse_from([
            "metallb-speaker",
            "--node-name",
            "front-0",
            "--source",
            "file:/s.yaml",
        ])
        .expect("valid");
        assert_eq!(args.source, SourceSpec::File("/s.yaml".into()));
        assert_eq!(args.announce_count, 5);
        assert_eq!(args.announce_interval, Duration::from_millis(1100));
        assert_eq!(args.announce_refresh, Refresh(None));
        assert_eq!(args.log_format, LogFormat::Json);
        assert_eq!(args.interface_exclude.len(), DEFAULT_EXCLUDE.len());
        assert_eq!(args.metrics_addr.to_string(), "127.0.0.1:7472");
    }

    #[test]
    fn host_and_port() {
        for (text, want) in [
            ("192.0.2.1:4226", "192.0.2.1:4226"),
            ("[2001:db8::1]:4226", "[2001:db8::1]:4226"),
            ("2001:db8::1:4226", "[2001:db8::1]:4226"),
            ("::1:7472", "[::1]:7472"),
        ] {
            assert_eq!(parse_host_port(text), Ok(want.parse().expect("addr")), "{text}");
        }
        for bad in ["", "192.0.2.1", "192.0.2.1:", "192.0.2.1:65536", "node:4226", "2001:db8::1"] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
        let args = Args::try_parse_from([
            "metallb-speaker",
            "--node-name",
            "n",
            "--source",
            "kubernetes",
            "--metrics-addr",
            "2001:db8::7:4227",
        ])
        .expect("valid");
        assert_eq!(args.source, SourceSpec::Kubernetes);
        assert_eq!(args.metrics_addr.to_string(), "[2001:db8::7]:4227");
    }

    #[test]
    fn gossip_flags() {
        let base = ["metallb-speaker", "--node-name", "n", "--source", "file:/s"];
        let args = Args::try_parse_from(base).expect("gossip is optional");
        assert_eq!((args.gossip_bind, args.gossip_peers.len()), (None, 0));
        let error = Args::try_parse_from(base.into_iter().chain(["--gossip-bind", "0.0.0.0:4218"]))
            .expect_err("a key is required with gossip");
        assert_eq!(error.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let args = Args::try_parse_from(base.into_iter().chain([
            "--gossip-bind",
            "198.51.100.1:4218",
            "--gossip-key-file",
            "/etc/gossip/key",
            "--gossip-peers",
            "198.51.100.1:4218,198.51.100.2:4218",
            "--pod-name",
            "speaker-x",
            "--namespace",
            "d8-metallb",
        ]))
        .expect("valid");
        assert_eq!(args.gossip_bind, Some("198.51.100.1:4218".parse().expect("addr")));
        assert_eq!(args.gossip_peers.len(), 2);
        assert_eq!(args.gossip_key_file, Some(PathBuf::from("/etc/gossip/key")));
        assert_eq!(args.pod_name.as_deref(), Some("speaker-x"));
    }
}
