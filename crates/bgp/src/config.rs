//! The announcer's YAML file: peers and routes, turned into a [`Desired`]. The format is
//! documented in `crates/bgp/README.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::driver::{BGP_PORT, Desired, PeerConfig, SessionStatus};
use crate::rib::RouteAttrs;
use crate::wire::LargeCommunity;
use crate::{Error, Result};

/// The file as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct File {
    /// Peers.
    #[serde(default)]
    pub peers: Vec<Peer>,
    /// Routes.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// One peer.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Peer {
    /// Unique name.
    pub name: String,
    /// The router's address.
    pub address: IpAddr,
    /// The router's port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The router's AS.
    #[serde(rename = "peerASN")]
    pub peer_asn: u32,
    /// Our AS.
    #[serde(rename = "myASN")]
    pub my_asn: u32,
    /// Our BGP Identifier.
    #[serde(rename = "routerID")]
    pub router_id: Ipv4Addr,
    /// Hold time in seconds.
    #[serde(default = "default_hold")]
    pub hold_time: u16,
    /// Address to connect from.
    pub source_address: Option<IpAddr>,
    /// TCP MD5 password.
    pub password: Option<String>,
    /// Graceful restart time in seconds; absent: no graceful restart.
    pub graceful_restart_time: Option<u16>,
    /// IPv4 next hop over an IPv6 session.
    #[serde(rename = "nextHopIPv4")]
    pub next_hop_v4: Option<Ipv4Addr>,
    /// IPv6 next hop over an IPv4 session.
    #[serde(rename = "nextHopIPv6")]
    pub next_hop_v6: Option<Ipv6Addr>,
}

fn default_port() -> u16 {
    BGP_PORT
}

fn default_hold() -> u16 {
    // RFC 4271 §10's suggested hold time.
    90
}

/// One route.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    /// The prefix, host bits ignored.
    pub prefix: IpNet,
    /// Peers to announce it to; absent: all.
    pub peers: Option<Vec<String>>,
    /// LOCAL_PREF on iBGP sessions.
    pub local_pref: Option<u32>,
    /// Standard communities, `high:low`.
    #[serde(default)]
    pub communities: Vec<String>,
    /// Large communities, `global:local1:local2`.
    #[serde(default)]
    pub large_communities: Vec<String>,
    /// Next hop instead of the session's own address.
    pub next_hop: Option<IpAddr>,
}

/// Reads and checks the file.
pub fn load(path: &Path) -> Result<Desired> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| Error::ReadConfig { path: path.into(), source })?;
    let file: File = serde_norway::from_str(&text)
        .map_err(|source| Error::ParseConfig { path: path.into(), source })?;
    file.desired()
}

impl File {
    /// The speaker's desired state; names and values are checked here so the speaker never
    /// sees a route for a missing peer or a malformed community.
    pub fn desired(&self) -> Result<Desired> {
        let mut peers = BTreeMap::new();
        for p in &self.peers {
            let config = PeerConfig {
                name: p.name.clone(),
                address: p.address,
                port: p.port,
                peer_asn: p.peer_asn,
                my_asn: p.my_asn,
                router_id: p.router_id,
                hold_time: p.hold_time,
                source_address: p.source_address,
                password: p.password.clone(),
                graceful_restart_time: p.graceful_restart_time,
                next_hop_v4: p.next_hop_v4,
                next_hop_v6: p.next_hop_v6,
            };
            config.session_config(false)?;
            if peers.insert(p.name.clone(), config).is_some() {
                return Err(Error::InvalidConfig(format!("peer {} is listed twice", p.name)));
            }
        }
        let mut routes: BTreeMap<IpNet, BTreeMap<String, RouteAttrs>> = BTreeMap::new();
        for r in &self.routes {
            let attrs = RouteAttrs {
                next_hop: r.next_hop,
                local_pref: r.local_pref,
                communities: r
                    .communities
                    .iter()
                    .map(|c| community(c))
                    .collect::<Result<BTreeSet<_>>>()?,
                large_communities: r
                    .large_communities
                    .iter()
                    .map(|c| large_community(c))
                    .collect::<Result<BTreeSet<_>>>()?,
            };
            let names: Vec<String> = match &r.peers {
                Some(names) => names.clone(),
                None => peers.keys().cloned().collect(),
            };
            for name in names {
                if !peers.contains_key(&name) {
                    return Err(Error::InvalidConfig(format!(
                        "route {} names peer {name}, which is not configured",
                        r.prefix
                    )));
                }
                routes.entry(r.prefix.trunc()).or_default().insert(name, attrs.clone());
            }
        }
        Ok(Desired { peers, routes })
    }
}

/// `high:low`, each 16 bits (RFC 1997 §1).
pub fn community(s: &str) -> Result<u32> {
    let bad = || Error::InvalidConfig(format!("community {s:?}: expected high:low, each 0-65535"));
    let (high, low) = s.split_once(':').ok_or_else(bad)?;
    let high: u16 = high.parse().map_err(|_| bad())?;
    let low: u16 = low.parse().map_err(|_| bad())?;
    Ok((u32::from(high) << 16) | u32::from(low))
}

/// `global:local1:local2`, each 32 bits (RFC 8092 §3).
pub fn large_community(s: &str) -> Result<LargeCommunity> {
    let bad = || {
        Error::InvalidConfig(format!("large community {s:?}: expected a:b:c, each 0-4294967295"))
    };
    let parts: Vec<u32> =
        s.split(':').map(|p| p.parse().map_err(|_| bad())).collect::<Result<_>>()?;
    match parts.as_slice() {
        &[global, local1, local2] => Ok(LargeCommunity { global, local1, local2 }),
        _ => Err(bad()),
    }
}

/// One session in the status file the announcer writes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StatusEntry {
    /// State label.
    pub state: String,
    /// Seconds since the Unix epoch when the state was entered.
    pub since_unix: u64,
    /// Prefixes the peer has from us.
    pub prefixes_sent: usize,
    /// UPDATEs sent.
    pub updates_sent: u64,
    /// UPDATEs received.
    pub updates_received: u64,
    /// Times the session left Established.
    pub flaps: u64,
    /// The last error.
    pub last_error: Option<String>,
}

impl From<&SessionStatus> for StatusEntry {
    fn from(s: &SessionStatus) -> StatusEntry {
        StatusEntry {
            state: s.state.label().into(),
            since_unix: s
                .since
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            prefixes_sent: s.prefixes_sent,
            updates_sent: s.updates_sent,
            updates_received: s.updates_received,
            flaps: s.flaps,
            last_error: s.last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
peers:
  - name: r1
    address: 192.0.2.1
    peerASN: 64500
    myASN: 64512
    routerID: 192.0.2.2
    sourceAddress: 192.0.2.2
    password: secret
    gracefulRestartTime: 120
  - name: r6
    address: "2001:db8::1"
    port: 1179
    peerASN: 64512
    myASN: 64512
    routerID: 192.0.2.2
    holdTime: 9
routes:
  - prefix: 198.51.100.10/32
    communities: ["64512:100", "65535:0"]
    largeCommunities: ["64512:1:2"]
  - prefix: 2001:db8:1::10/128
    peers: [r6]
    localPref: 200
"#;

    #[test]
    fn the_documented_sample_parses() {
        let file: File = serde_norway::from_str(SAMPLE).unwrap();
        let d = file.desired().unwrap();
        assert_eq!(d.peers["r1"].port, 179);
        assert_eq!(d.peers["r1"].hold_time, 90);
        assert_eq!(d.peers["r6"].hold_time, 9);
        let v4 = &d.routes[&"198.51.100.10/32".parse().unwrap()];
        assert_eq!(v4.keys().collect::<Vec<_>>(), ["r1", "r6"]);
        assert_eq!(v4["r1"].communities, [(64512 << 16) | 100, 0xffff_0000].into());
        let v6 = &d.routes[&"2001:db8:1::10/128".parse().unwrap()];
        assert_eq!(v6.keys().collect::<Vec<_>>(), ["r6"]);
        assert_eq!(v6["r6"].local_pref, Some(200));
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let cases = [
            ("unknown field", "peers: []\nroutez: []\n", "routez"),
            (
                "route for a missing peer",
                "routes:\n  - prefix: 198.51.100.1/32\n    peers: [nope]\n",
                "nope",
            ),
            (
                "bad community",
                "routes:\n  - prefix: 198.51.100.1/32\n    communities: [\"65536:1\"]\n",
                "65536:1",
            ),
            (
                "bad large community",
                "routes:\n  - prefix: 198.51.100.1/32\n    largeCommunities: [\"1:2\"]\n",
                "1:2",
            ),
            (
                "hold time 1",
                "peers:\n  - {name: a, address: 192.0.2.1, peerASN: 1, myASN: 2, routerID: 192.0.2.2, holdTime: 1}\n",
                "hold time 1",
            ),
            (
                "duplicate peer",
                "peers:\n  - {name: a, address: 192.0.2.1, peerASN: 1, myASN: 2, routerID: 192.0.2.2}\n  - {name: a, address: 192.0.2.3, peerASN: 1, myASN: 2, routerID: 192.0.2.2}\n",
                "twice",
            ),
        ];
        for (case, text, needle) in cases {
            let err = serde_norway::from_str::<File>(text)
                .map_err(|e| e.to_string())
                .and_then(|f| f.desired().map_err(|e| e.to_string()))
                .expect_err(case);
            assert!(err.contains(needle), "{case}: {err}");
        }
    }

    #[test]
    fn communities() {
        assert_eq!(community("65535:0").unwrap(), 0xffff_0000);
        assert!(community("1").is_err());
        assert_eq!(large_community("4200000000:1:2").unwrap().global, 4_200_000_000);
        assert!(large_community("1:2:3:4").is_err());
    }
}
