//! The BGP file source (`docs/internal/bgp-objects.md`, "File source"): one node's peers,
//! pools and routes, already reduced to that node, turned into the shared [`Input`] and
//! reduced by [`reduce::reduce`](super::reduce::reduce) like the Kubernetes source's objects.
//!
//! The file is re-read when its modification time or size changes; a file that cannot be read,
//! does not parse or is for another node keeps the previous state in force (counted in
//! `source_errors_total`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use metallb_planner::pool::Pool;
use serde::Deserialize;

use super::Feed;
use super::reduce::{self, BfdIntervals, Input, Password, Peer, Reduced, Route};
use crate::metrics::Metrics;

/// The file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeFile {
    /// The node the file is for; must be the speaker's `--node-name`.
    pub node: String,
    /// Peers by name.
    #[serde(default)]
    pub peers: BTreeMap<String, FilePeer>,
    /// Pools by name: their address ranges (CIDRs).
    #[serde(default)]
    pub pools: BTreeMap<String, Vec<IpNet>>,
    /// The routes this node announces.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// One peer.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilePeer {
    /// The router's address.
    pub peer_address: IpAddr,
    /// The router's port.
    #[serde(default = "default_port")]
    pub peer_port: u16,
    /// The router's AS.
    #[serde(rename = "peerASN")]
    pub peer_asn: u32,
    /// Our AS.
    #[serde(rename = "myASN")]
    pub my_asn: u32,
    /// Our BGP Identifier; default: the source address when it is IPv4, else derived from the
    /// node name.
    #[serde(rename = "routerID")]
    pub router_id: Option<Ipv4Addr>,
    /// Hold time, e.g. `90s` (`0s`: no keepalives).
    #[serde(default)]
    pub hold_time: Option<String>,
    /// The node's address to connect from.
    pub source_address: Option<IpAddr>,
    /// A file holding the TCP MD5 password.
    pub password_file: Option<PathBuf>,
    /// BFD, when the peer asks for it.
    pub bfd: Option<BfdIntervals>,
}

fn default_port() -> u16 {
    metallb_bgp::driver::BGP_PORT
}

/// The shared input of `file`; `password` reads a password file (`None`: unreadable).
pub fn input(file: &NodeFile, password: impl Fn(&Path) -> Option<String>) -> Input {
    let peers = file
        .peers
        .iter()
        .map(|(name, peer)| {
            let password = match &peer.password_file {
                None => Password::None,
                Some(path) => password(path).map_or(Password::Missing, Password::Known),
            };
            let peer = Peer {
                address: peer.peer_address,
                port: peer.peer_port,
                peer_asn: peer.peer_asn,
                my_asn: peer.my_asn,
                router_id: peer.router_id,
                hold_time: peer.hold_time.clone(),
                source_address: peer.source_address,
                password,
                bfd: peer.bfd,
            };
            (name.clone(), peer)
        })
        .collect();
    let pools = file
        .pools
        .iter()
        .map(|(name, nets)| {
            let entries: Vec<String> = nets.iter().map(|n| n.trunc().to_string()).collect();
            (name.clone(), Pool::parse(&entries))
        })
        .collect();
    Input {
        node: file.node.clone(),
        peers,
        pools,
        routes: file.routes.clone(),
        ignored: BTreeMap::new(),
    }
}

/// Reduces `file` to what this node announces; `password` reads a password file.
pub fn reduce(file: &NodeFile, password: impl Fn(&Path) -> Option<String>) -> Reduced {
    reduce::reduce(&input(file, password))
}

/// Follows `path` every `poll` and publishes each new reduced state into `feed`, until the
/// receiver is gone.
pub async fn follow(
    path: PathBuf,
    node: String,
    poll: Duration,
    feed: Feed,
    metrics: Arc<Metrics>,
) {
    let mut stamp = None;
    let mut tick = tokio::time::interval(poll);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = feed.closed() => return,
        }
        let now = stamp_of(&path);
        if now == stamp {
            continue;
        }
        stamp = now;
        if let Some(reduced) = load(&path, &node, &metrics) {
            feed.send_if_modified(|current| {
                let changed = current.as_deref() != Some(&reduced);
                if changed {
                    *current = Some(Arc::new(reduced));
                }
                changed
            });
        }
    }
}

type Stamp = Option<(SystemTime, u64)>;

fn stamp_of(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Reads and reduces the file; `None` (logged, counted) when it cannot be used.
fn load(path: &Path, node: &str, metrics: &Metrics) -> Option<Reduced> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            tracing::error!(%error, path = %path.display(), "cannot read the BGP state file; keeping the previous state");
            metrics.source_errors.inc();
            return None;
        }
    };
    let parsed: NodeFile = match serde_norway::from_str(&text) {
        Ok(parsed) => parsed,
        Err(error) => {
            tracing::error!(%error, path = %path.display(), "the BGP state file does not parse; keeping the previous state");
            metrics.source_errors.inc();
            return None;
        }
    };
    if parsed.node != node {
        tracing::error!(file_node = %parsed.node, %node, "the BGP state file is for another node; ignored");
        metrics.source_errors.inc();
        return None;
    }
    let reduced = reduce(&parsed, |path| match std::fs::read_to_string(path) {
        Ok(text) => Some(text.trim_end_matches(['\n', '\r']).to_owned()),
        Err(error) => {
            tracing::error!(%error, path = %path.display(), "cannot read a peer's password file");
            None
        }
    });
    metrics.source_loads.inc();
    Some(reduced)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::bgp::reduce::{GRACEFUL_RESTART_TIME, Ignored, router_id_of};

    const FILE: &str = r#"
node: n1
peers:
  tor:
    peerAddress: 192.0.2.1
    peerASN: 64500
    myASN: 64501
    holdTime: 9s
    sourceAddress: 192.0.2.11
    bfd: {receiveInterval: 100, transmitInterval: 200, detectMultiplier: 3}
  spine:
    peerAddress: 2001:db8::1
    peerASN: 64501
    myASN: 64501
pools:
  public: [203.0.113.0/24]
routes:
  - {pool: public, ip: 203.0.113.10, prefix: 203.0.113.10/32, peers: [tor], communities: ["65535:65281"]}
  - {pool: public, ip: 203.0.113.10, prefix: 203.0.113.10/32, peers: [tor, spine], communities: ["64512:1"], localPref: 150}
  - {pool: public, ip: 203.0.113.11, prefix: 203.0.113.0/24, peers: [spine], largeCommunities: ["64512:1:2"]}
  - {pool: public, ip: 198.51.100.1, prefix: 198.51.100.1/32, peers: [tor]}
  - {pool: other, ip: 203.0.113.12, prefix: 203.0.113.12/32, peers: [tor]}
  - {pool: public, ip: 203.0.113.13, prefix: 203.0.113.14/32, peers: [tor]}
  - {pool: public, ip: 203.0.113.15, prefix: 203.0.113.15/32, peers: [nobody]}
  - {pool: public, ip: 203.0.113.16, prefix: 203.0.113.16/32, peers: [tor], communities: ["70000:1"]}
"#;

    fn parse(text: &str) -> NodeFile {
        serde_norway::from_str(text).expect("the file parses")
    }

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn routes_merge_per_peer_and_prefix_and_bad_ones_are_counted() {
        let r = reduce(&parse(FILE), |_| None);
        let tor = &r.desired.peers["tor"];
        assert_eq!((tor.hold_time, tor.router_id), (9, Ipv4Addr::new(192, 0, 2, 11)));
        assert_eq!(tor.graceful_restart_time, Some(GRACEFUL_RESTART_TIME));
        assert_eq!(r.desired.peers["spine"].router_id, router_id_of("n1"));
        let ten = &r.desired.routes[&net("203.0.113.10/32")];
        assert_eq!(ten["tor"].communities, BTreeSet::from([0xffff_ff01, (64512 << 16) | 1]));
        assert_eq!(ten["tor"].local_pref, Some(150));
        assert_eq!(ten["spine"].communities, BTreeSet::from([(64512 << 16) | 1]));
        let agg = &r.desired.routes[&net("203.0.113.0/24")]["spine"];
        assert_eq!(agg.large_communities.len(), 1);
        assert_eq!(r.desired.routes.len(), 2);
        let want = BTreeMap::from([
            (Ignored::UnknownPool, 1),
            (Ignored::OutsidePool, 1),
            (Ignored::PrefixWithoutIp, 1),
            (Ignored::UnknownPeer, 1),
            (Ignored::BadCommunity, 1),
        ]);
        assert_eq!(r.ignored, want);
        let bfd = r.bfd["tor"];
        assert_eq!(bfd.params.desired_min_tx, Duration::from_millis(200));
        assert_eq!(bfd.params.role, metallb_bfd::Role::Active);
        assert_eq!(bfd.local, Some("192.0.2.11".parse().unwrap()));
        assert!(!r.bfd.contains_key("spine"));
    }

    #[test]
    fn bfd_passive_mode_makes_the_node_wait_for_the_router() {
        let text = FILE.replace("detectMultiplier: 3}", "detectMultiplier: 3, passiveMode: true}");
        let r = reduce(&parse(&text), |_| None);
        assert_eq!(r.bfd["tor"].params.role, metallb_bfd::Role::Passive);
    }

    #[test]
    fn a_peer_whose_password_cannot_be_read_is_left_out_with_its_routes() {
        let text = FILE.replace("    holdTime: 9s\n", "    holdTime: 9s\n    passwordFile: /x\n");
        let r = reduce(&parse(&text), |_| None);
        assert!(!r.desired.peers.contains_key("tor"));
        assert_eq!(r.ignored[&Ignored::MissingPassword], 1);
        let r = reduce(&parse(&text), |_| Some("secret".to_owned()));
        assert_eq!(r.desired.peers["tor"].password.as_deref(), Some("secret"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_norway::from_str::<NodeFile>("node: n1\nbogus: 1\n").is_err());
    }

    proptest! {
        /// The routes' order never changes what is announced.
        #[test]
        fn order_does_not_matter(seed in any::<u64>()) {
            let file = parse(FILE);
            let mut shuffled = file.clone();
            let n = shuffled.routes.len();
            let mut state = seed;
            for i in (1..n).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.routes.swap(i, (state >> 33) as usize % (i + 1));
            }
            prop_assert_eq!(reduce(&file, |_| None), reduce(&shuffled, |_| None));
        }
    }
}
