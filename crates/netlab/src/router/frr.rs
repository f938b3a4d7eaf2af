//! FRRouting (8.4.4 in Debian 12): per-daemon configuration files, command lines, and what
//! `vtysh ... json` prints.
//!
//! Quirks this module relies on, checked against 8.4.4:
//! - The daemons are in `/usr/lib/frr`, not on `PATH`; `vtysh` is in `/usr/bin`.
//! - Isolation: every path a daemon would take from `/etc/frr` or `/var/run/frr` is given on
//!   the command line: `-f` (config file), `-i` (pid file), `--vty_socket` (directory of the
//!   `<daemon>.vty` sockets), `-z` (zebra's ZAPI socket, for zebra and its clients),
//!   `--bfdctl` (bfdd's control socket). `-N pathspace` is not used: it only inserts a
//!   directory *below* `/etc/frr` and `/var/run/frr`.
//! - Privileges: a daemon switches to user `frr` by default and then cannot reach a test's
//!   directory. `-u root` alone is refused (`privs_init: user(root) is not part of vty group
//!   specified(frrvty)`, the group the Debian build names); `-u root -g frrvty` passes, since a
//!   user is always a member of the group it is started with. The daemons then warn
//!   `vty_serv_un: could chown socket`, harmlessly.
//! - `bgpd -l ADDR` (listen address) implies `-n`, no kernel installation, so listen addresses
//!   are not given to bgpd; it listens on every address of its namespace, which in a lab is
//!   the router's own. `update-source` still fixes the source of the sessions it opens.
//! - Policy defaults of FRR 8: eBGP routes are dropped without a route-map
//!   (`bgp ebgp-requires-policy`, RFC 8212), and `network` statements only announce prefixes
//!   present in the RIB (`bgp network import-check`); both are turned off.
//! - Graceful shutdown: 8.4 already gives a received GRACEFUL_SHUTDOWN path LOCAL_PREF 0 by
//!   itself (seen in the lab's test with the policy off). The route-map `gshut-in` (match the
//!   community, set local-preference 0) on every neighbor says so explicitly, so the behaviour
//!   does not hang on a version's default; [`RouterConfig::graceful_shutdown`] off cannot
//!   turn FRR's own handling off.
//! - ECMP: `maximum-paths` (and `maximum-paths ibgp`) per address family; paths from
//!   neighbors of different ASNs are only "equal" with `bgp bestpath as-path multipath-relax`.
//!   zebra installs them as one route with a nexthop group (`ip route` shows `nhid N` and, with
//!   the kernel's default `nexthop_compat_mode`, the gateways too).
//! - Graceful restart: helper mode for every neighbor is FRR's default, and
//!   `neighbor X graceful-restart-helper` would make a neighbor helper-only. A neighbor with
//!   graceful restart gets `neighbor X graceful-restart` (helper and restarting speaker), one
//!   without gets `graceful-restart-disable`. The restart time is global
//!   (`bgp graceful-restart restart-time`), so neighbors must agree on it.
//! - BFD: `bfdd` runs beside zebra and bgpd; bgpd reaches it through zebra. Intervals live in
//!   a bfdd profile (`bfd` / `profile pN`), named by `neighbor X bfd profile pN`.
//! - `show bgp <afi> unicast json detail` prints, per prefix, an array whose first element is
//!   a header (`prefix`, `advertisedTo`) and whose other elements are paths: `aspath.segments`,
//!   `community.list` (well-known values by name: `gracefulShutdown`, `noExport`, ...), `largeCommunity.list`, `locPrf` (only when the attribute is set: iBGP),
//!   `nexthops[].ip` with `scope` (`global` / `link-local`) for IPv6, `peer.peerId`,
//!   `bestpath.overall`, `stale`.
//! - A route carrying LLGR_STALE (65535:6) from a neighbor that did not negotiate long-lived
//!   graceful restart is not kept at all (seen with 8.4): it never shows up.
//! - `show bgp neighbors json` maps each neighbor address to `bgpState`, once Established
//!   `bgpTimerUpMsec`, and per family `addressFamilyInfo.<afi>Unicast.acceptedPrefixCounter`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use super::config::{Announcement, Community, Family, LargeCommunity, RouterConfig};
use super::state::{BfdState, LearnedRoute, Session, SessionState};

/// zebra, the RIB manager that installs routes into the kernel.
pub(crate) const ZEBRA: &str = "/usr/lib/frr/zebra";
/// bgpd.
pub(crate) const BGPD: &str = "/usr/lib/frr/bgpd";
/// bfdd.
pub(crate) const BFDD: &str = "/usr/lib/frr/bfdd";

/// The group that passes the daemons' privilege check as root (see the module docs).
pub(super) const VTY_GROUP: &str = "frrvty";

/// ECMP width asked for; the Debian build supports 256 (`--enable-multipath=256`), and no lab
/// has more announcing nodes than this.
const MAXIMUM_PATHS: u32 = 64;

/// Renders `zebra.conf`. Logging goes to stdout, which the lab appends to the daemon's log.
pub(super) fn render_zebra(hostname: &str) -> String {
    format!("hostname {hostname}\nlog stdout informational\n")
}

/// Renders `bfdd.conf`: one profile per neighbor with BFD, `p<index>`.
pub(super) fn render_bfdd(config: &RouterConfig, hostname: &str) -> String {
    let mut out = format!("hostname {hostname}\nlog stdout informational\nbfd\n");
    for (index, n) in config.neighbors.iter().enumerate() {
        if let Some(bfd) = n.bfd {
            let _ = writeln!(out, " profile p{index}");
            let _ = writeln!(out, "  receive-interval {}", bfd.min_rx.as_millis());
            let _ = writeln!(out, "  transmit-interval {}", bfd.min_tx.as_millis());
            let _ = writeln!(out, "  detect-multiplier {}", bfd.multiplier);
            let _ = writeln!(out, " exit");
        }
    }
    out.push_str("exit\n");
    out
}

/// Renders `bgpd.conf`.
/// The announcements' route-maps come from `maps`, which remembers them for announcements
/// made later at run time.
pub(super) fn render_bgpd(
    config: &RouterConfig,
    hostname: &str,
    maps: &mut RouteMaps,
) -> Result<String, String> {
    let restart_times: BTreeSet<u16> =
        config.neighbors.iter().filter_map(|n| n.graceful_restart).collect();
    if restart_times.len() > 1 {
        return Err("FRR's graceful restart time is global: neighbors must agree on it".into());
    }
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "hostname {hostname}\nlog stdout informational\n!");
    let mut lines = Vec::new();
    for a in &config.announce {
        if let Some((_, definition)) = maps.name_for(a) {
            lines.extend(definition);
        }
    }
    for line in lines {
        let _ = writeln!(w, "{line}");
    }
    if config.graceful_shutdown {
        // RFC 8326 §4: GRACEFUL_SHUTDOWN lowers LOCAL_PREF to 0; everything else passes.
        let _ = writeln!(w, "bgp community-list standard gshut permit 65535:0");
        let _ = writeln!(w, "route-map gshut-in permit 10\n match community gshut");
        let _ = writeln!(w, " set local-preference 0\nexit");
        let _ = writeln!(w, "route-map gshut-in permit 20\nexit\n!");
    }
    let _ = writeln!(w, "router bgp {}", config.asn);
    let _ = writeln!(w, " bgp router-id {}", config.router_id);
    let _ = writeln!(w, " no bgp ebgp-requires-policy");
    let _ = writeln!(w, " no bgp network import-check");
    let _ = writeln!(w, " no bgp default ipv4-unicast");
    if config.multipath {
        let _ = writeln!(w, " bgp bestpath as-path multipath-relax");
    }
    if let Some(time) = restart_times.first() {
        let _ = writeln!(w, " bgp graceful-restart restart-time {time}");
    }
    for (index, n) in config.neighbors.iter().enumerate() {
        let peer = n.address;
        let _ = writeln!(w, " neighbor {peer} remote-as {}", n.asn);
        let keepalive = n.hold_time / 3;
        let _ = writeln!(w, " neighbor {peer} timers {keepalive} {}", n.hold_time);
        let _ = writeln!(w, " neighbor {peer} timers connect 1");
        // Send changes at once; the eBGP default of some profiles batches them.
        let _ = writeln!(w, " neighbor {peer} advertisement-interval 0");
        if let Some(local) = config.local_address_for(n) {
            let _ = writeln!(w, " neighbor {peer} update-source {local}");
        }
        if let Some(password) = &n.password {
            let _ = writeln!(w, " neighbor {peer} password {password}");
        }
        if n.passive {
            let _ = writeln!(w, " neighbor {peer} passive");
        }
        if n.bfd.is_some() {
            let _ = writeln!(w, " neighbor {peer} bfd profile p{index}");
        }
        // Per neighbor: FRR's global default (helper for everyone) would otherwise also
        // cover neighbors without graceful restart.
        if n.graceful_restart.is_some() {
            let _ = writeln!(w, " neighbor {peer} graceful-restart");
        } else {
            let _ = writeln!(w, " neighbor {peer} graceful-restart-disable");
        }
    }
    for family in config.families() {
        let afi = afi(family);
        let _ = writeln!(w, " address-family {afi} unicast");
        if config.multipath {
            let _ = writeln!(w, "  maximum-paths {MAXIMUM_PATHS}");
            let _ = writeln!(w, "  maximum-paths ibgp {MAXIMUM_PATHS}");
        }
        for a in config.announce.iter().filter(|a| Family::of_prefix(&a.prefix) == family) {
            let _ = writeln!(w, "  {}", network(a, maps));
        }
        for n in config.neighbors.iter().filter(|n| n.families.contains(&family)) {
            let _ = writeln!(w, "  neighbor {} activate", n.address);
            if config.graceful_shutdown {
                let _ = writeln!(w, "  neighbor {} route-map gshut-in in", n.address);
            }
            if n.asn == config.asn {
                let _ = writeln!(w, "  neighbor {} next-hop-self", n.address);
            }
        }
        let _ = writeln!(w, " exit-address-family");
    }
    let _ = writeln!(w, "exit");
    Ok(out)
}

/// What a route-map sets on an announcement.
type Attributes = (BTreeSet<Community>, BTreeSet<LargeCommunity>, Option<u32>);

/// One route-map per distinct set of attributes, `ann0`, `ann1`, ...: a benchmark's 10 000
/// announcements with the same communities share one, instead of 10 000 route-maps.
#[derive(Debug, Default)]
pub(super) struct RouteMaps {
    names: BTreeMap<Attributes, String>,
}

impl RouteMaps {
    /// The route-map of `a` (`None` when it sets nothing) and, when it is new, the
    /// configuration lines that define it (else none).
    pub(super) fn name_for(&mut self, a: &Announcement) -> Option<(String, Vec<String>)> {
        let key = (a.communities.clone(), a.large_communities.clone(), a.local_pref);
        if key == Attributes::default() {
            return None;
        }
        if let Some(name) = self.names.get(&key) {
            return Some((name.clone(), Vec::new()));
        }
        let name = format!("ann{}", self.names.len());
        let mut lines = vec![format!("route-map {name} permit 10")];
        if !a.communities.is_empty() {
            let list: Vec<String> = a.communities.iter().map(ToString::to_string).collect();
            lines.push(format!(" set community {}", list.join(" ")));
        }
        if !a.large_communities.is_empty() {
            let list: Vec<String> = a.large_communities.iter().map(ToString::to_string).collect();
            lines.push(format!(" set large-community {}", list.join(" ")));
        }
        if let Some(lp) = a.local_pref {
            lines.push(format!(" set local-preference {lp}"));
        }
        lines.push("exit".into());
        self.names.insert(key, name.clone());
        Some((name, lines))
    }
}

/// The `network` statement of `a`, defining its route-map in `maps` if needed (the caller
/// writes the definition first: see [`RouteMaps::name_for`]).
pub(super) fn network(a: &Announcement, maps: &mut RouteMaps) -> String {
    match maps.name_for(a) {
        Some((name, _)) => format!("network {} route-map {name}", a.prefix),
        None => format!("network {}", a.prefix),
    }
}

/// `ipv4` / `ipv6`, as FRR's commands spell the AFI.
pub(super) fn afi(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

/// Parses `show bgp neighbors json`.
pub(super) fn parse_neighbors(json: &Value) -> Result<Vec<Session>, String> {
    let map = json.as_object().ok_or("not a JSON object")?;
    let mut sessions = Vec::new();
    for (addr, peer) in map {
        let Ok(neighbor) = addr.parse::<IpAddr>() else {
            // Other keys (none in 8.4, but later versions add some) are not neighbors.
            continue;
        };
        let name = peer["bgpState"].as_str().ok_or_else(|| format!("{addr}: no bgpState"))?;
        let state =
            SessionState::parse(name).ok_or_else(|| format!("{addr}: unknown state {name:?}"))?;
        let uptime = (state == SessionState::Established)
            .then(|| peer["bgpTimerUpMsec"].as_u64().map(Duration::from_millis))
            .flatten();
        let mut prefixes = None;
        if let Some(families) = peer["addressFamilyInfo"].as_object() {
            for family in families.values() {
                if let Some(n) = family["acceptedPrefixCounter"].as_u64() {
                    *prefixes.get_or_insert(0) += n;
                }
            }
        }
        sessions.push(Session { neighbor, state, uptime, prefixes });
    }
    sessions.sort_by_key(|s| s.neighbor);
    Ok(sessions)
}

/// Parses `show bfd peers json` (of bfdd): a list of `{"peer": ADDR, "status": STATE, ...}`.
pub(super) fn parse_bfd(json: &Value) -> Result<BTreeMap<IpAddr, BfdState>, String> {
    let mut peers = BTreeMap::new();
    for peer in json.as_array().ok_or("not a JSON list")? {
        let addr = peer["peer"].as_str().ok_or("a BFD peer without `peer`")?;
        let addr = addr.parse::<IpAddr>().map_err(|e| format!("bad BFD peer {addr:?}: {e}"))?;
        let status = peer["status"].as_str().ok_or_else(|| format!("{addr}: no status"))?;
        let state = BfdState::parse(status)
            .ok_or_else(|| format!("{addr}: unknown BFD status {status:?}"))?;
        peers.insert(addr, state);
    }
    Ok(peers)
}

/// Parses `show bgp <afi> unicast json detail`.
pub(super) fn parse_routes(json: &Value) -> Result<Vec<LearnedRoute>, String> {
    let Some(routes) = json.get("routes") else {
        // An empty table prints `{}` in some versions.
        return Ok(Vec::new());
    };
    let routes = routes.as_object().ok_or("routes is not an object")?;
    let mut out = Vec::new();
    for (prefix, paths) in routes {
        let prefix = prefix.parse().map_err(|e| format!("bad prefix {prefix:?}: {e}"))?;
        let paths = paths.as_array().ok_or_else(|| format!("{prefix}: paths not an array"))?;
        // The header element has no next hops; only paths do.
        for path in paths.iter().filter(|p| p.get("nexthops").is_some()) {
            out.push(parse_path(prefix, path).map_err(|e| format!("{prefix}: {e}"))?);
        }
    }
    out.sort();
    Ok(out)
}

fn parse_path(prefix: ipnet::IpNet, path: &Value) -> Result<LearnedRoute, String> {
    let from = path["peer"]["peerId"]
        .as_str()
        .ok_or("no peer.peerId")?
        .parse::<IpAddr>()
        .map_err(|e| format!("bad peerId: {e}"))?;
    let hops = path["nexthops"].as_array().ok_or("nexthops not an array")?;
    let next_hop = hops
        .iter()
        .find(|h| h["scope"].as_str() != Some("link-local"))
        .and_then(|h| h["ip"].as_str())
        .ok_or("no global next hop")?
        .parse::<IpAddr>()
        .map_err(|e| format!("bad next hop: {e}"))?;
    let mut as_path = Vec::new();
    for segment in path["aspath"]["segments"].as_array().into_iter().flatten() {
        for asn in segment["list"].as_array().into_iter().flatten() {
            let asn = asn.as_u64().and_then(|a| u32::try_from(a).ok()).ok_or("bad ASN")?;
            as_path.push(asn);
        }
    }
    let list = |key: &str| -> Vec<&str> {
        path[key]["list"].as_array().into_iter().flatten().filter_map(Value::as_str).collect()
    };
    let communities = list("community").into_iter().map(community).collect::<Result<_, _>>()?;
    let large_communities = list("largeCommunity")
        .into_iter()
        .map(str::parse::<LargeCommunity>)
        .collect::<Result<_, _>>()?;
    let local_pref = match &path["locPrf"] {
        Value::Null => None,
        v => Some(v.as_u64().and_then(|v| u32::try_from(v).ok()).ok_or("bad locPrf")?),
    };
    Ok(LearnedRoute {
        prefix,
        from,
        next_hop,
        as_path,
        communities,
        large_communities,
        local_pref,
        stale: path["stale"].as_bool().unwrap_or(false),
        best: path["bestpath"]["overall"].as_bool().unwrap_or(false),
    })
}

/// A community as FRR's JSON lists it: `a:b`, or the name of a well-known one (RFC 1997,
/// 7999, 8326, 9494 and the IANA registry), as FRR 8.4 printed them for every well-known
/// value announced to it (`0:0` is `internet`; LLGR_STALE never arrives, see the module docs).
fn community(text: &str) -> Result<Community, String> {
    const WELL_KNOWN: [(&str, u16); 13] = [
        ("gracefulShutdown", 0),
        ("acceptown", 1),
        ("routeFilterTranslatedV4", 2),
        ("routeFilterV4", 3),
        ("routeFilterTranslatedV6", 4),
        ("routeFilterV6", 5),
        ("noLlgr", 7),
        ("acceptownnexthop", 8),
        ("blackhole", 666),
        ("noExport", 65281),
        ("noAdvertise", 65282),
        ("localAs", 65283),
        ("noPeer", 65284),
    ];
    if text == "internet" {
        return Ok(Community(0, 0));
    }
    match WELL_KNOWN.iter().find(|(name, _)| *name == text) {
        Some((_, value)) => Ok(Community(65535, *value)),
        None => text.parse(),
    }
}

/// Parses what `vtysh` printed as JSON; the parse error names the command.
pub(super) fn json(command: &str, text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("`{command}` printed no JSON ({e}): {text}"))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::router::config::{Announcement, Bfd, Neighbor};

    #[test]
    fn detail_json_paths_skip_the_header_and_take_the_global_next_hop() {
        let text = r#"{"routerId":"192.0.2.1","routes":{
          "203.0.113.10/32":[{"prefix":"203.0.113.10/32","advertisedTo":{}},
            {"aspath":{"segments":[{"type":"as-sequence","list":[64501,64510]}]},
             "community":{"list":["65000:1"]},"largeCommunity":{"list":["65000:1:2"]},
             "nexthops":[{"ip":"192.0.2.11","afi":"ipv4","used":true}],
             "peer":{"peerId":"192.0.2.11"},"bestpath":{"overall":true}},
            {"aspath":{"segments":[]},"locPrf":200,"stale":true,
             "nexthops":[{"ip":"192.0.2.12"}],"peer":{"peerId":"192.0.2.12"}}],
          "2001:db8:1::10/128":[{"prefix":"2001:db8:1::10/128"},
            {"nexthops":[{"ip":"fe80::1","scope":"link-local"},{"ip":"2001:db8::11","scope":"global"}],
             "peer":{"peerId":"2001:db8::11"}}]}}"#;
        let routes = parse_routes(&json("show", text).unwrap()).unwrap();
        assert_eq!(routes.len(), 3);
        let v4: Vec<_> = routes.iter().filter(|r| r.prefix.addr().is_ipv4()).collect();
        assert_eq!(v4[0].as_path, vec![64501, 64510]);
        assert!(v4[0].best && !v4[0].stale && v4[0].local_pref.is_none());
        assert!(v4[0].communities.contains(&Community(65000, 1)));
        assert!(v4[0].large_communities.contains(&LargeCommunity(65000, 1, 2)));
        assert!(v4[1].stale && !v4[1].best);
        assert_eq!(v4[1].local_pref, Some(200));
        let v6 = routes.iter().find(|r| r.prefix.addr().is_ipv6()).unwrap();
        assert_eq!(v6.next_hop, "2001:db8::11".parse::<IpAddr>().unwrap());
        assert!(parse_routes(&json("show", "{}").unwrap()).unwrap().is_empty());
    }

    #[test]
    fn well_known_communities_come_by_name() {
        // What FRR 8.4 printed for GoBGP's `community 0:0,65535:0,...,65535:65284,65535:9`.
        let text = r#"{"routes":{"203.0.113.10/32":[{"nexthops":[{"ip":"192.0.2.11"}],
            "peer":{"peerId":"192.0.2.11"},"community":{"list":["internet","gracefulShutdown",
            "acceptown","routeFilterTranslatedV4","routeFilterV4","routeFilterTranslatedV6",
            "routeFilterV6","noLlgr","acceptownnexthop","65535:9","blackhole","noExport",
            "noAdvertise","localAs","noPeer"]}}]}}"#;
        let routes = parse_routes(&json("show", text).unwrap()).unwrap();
        let got: Vec<Community> = routes[0].communities.iter().copied().collect();
        let want: Vec<Community> = [0, 1, 2, 3, 4, 5, 7, 8, 9, 666, 65281, 65282, 65283, 65284]
            .into_iter()
            .map(|v| Community(65535, v))
            .chain([Community(0, 0), Community(65535, 0)])
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(got, want);
        let unknown = text.replace("noPeer", "noSuchName");
        assert!(parse_routes(&json("show", &unknown).unwrap()).is_err());
    }

    #[test]
    fn bad_json_is_an_error() {
        for bad in [
            r#"{"routes":[]}"#,
            r#"{"routes":{"nope":[]}}"#,
            r#"{"routes":{"192.0.2.0/24":[{"nexthops":[{"ip":"x"}],"peer":{"peerId":"192.0.2.2"}}]}}"#,
            r#"{"routes":{"192.0.2.0/24":[{"nexthops":[],"peer":{"peerId":"192.0.2.2"}}]}}"#,
            r#"{"routes":{"192.0.2.0/24":[{"nexthops":[{"ip":"192.0.2.3"}]}]}}"#,
        ] {
            assert!(parse_routes(&json("show", bad).unwrap()).is_err(), "{bad}");
        }
        assert!(json("show", "% Unknown command").is_err());
    }

    #[test]
    fn neighbors_with_state_and_uptime() {
        let text = r#"{"192.0.2.11":{"bgpState":"Established","bgpTimerUpMsec":5000,
                         "addressFamilyInfo":{"ipv4Unicast":{"acceptedPrefixCounter":2},
                                              "ipv6Unicast":{"acceptedPrefixCounter":1}}},
                       "2001:db8::11":{"bgpState":"Active","bgpTimerUpMsec":0}}"#;
        let sessions = parse_neighbors(&json("show", text).unwrap()).unwrap();
        assert_eq!(sessions[0].state, SessionState::Established);
        assert_eq!(sessions[0].uptime, Some(Duration::from_secs(5)));
        assert_eq!(sessions[0].prefixes, Some(3));
        assert_eq!(sessions[1].state, SessionState::Active);
        assert_eq!(sessions[1].uptime, None);
        let bad = r#"{"192.0.2.11":{"bgpState":"Dancing"}}"#;
        assert!(parse_neighbors(&json("show", bad).unwrap()).is_err());
    }

    #[test]
    fn announcements_with_equal_attributes_share_a_route_map() {
        let mut config = RouterConfig::new(64501, Ipv4Addr::new(192, 0, 2, 11));
        for i in 0..3u8 {
            let prefix = format!("203.0.113.{i}/32").parse().unwrap();
            config = config.announce(Announcement::new(prefix).community(Community(65000, 1)));
        }
        config = config
            .announce(Announcement::new("203.0.113.9/32".parse().unwrap()))
            .neighbor(Neighbor::new("192.0.2.1".parse().unwrap(), 64500));
        let mut maps = RouteMaps::default();
        let text = render_bgpd(&config, "a", &mut maps).unwrap();
        assert_eq!(text.matches("route-map ann0 permit 10").count(), 1, "{text}");
        assert!(!text.contains("ann1"), "{text}");
        assert!(text.contains("  network 203.0.113.2/32 route-map ann0\n"));
        assert!(text.contains("  network 203.0.113.9/32\n"), "no attributes, no route-map");
        // Later, at run time: the known map again, or a new one defined on the way.
        let known =
            Announcement::new("203.0.113.5/32".parse().unwrap()).community(Community(65000, 1));
        assert_eq!(maps.name_for(&known), Some(("ann0".to_owned(), Vec::new())));
        let other = known.clone().local_pref(50);
        let (name, lines) = maps.name_for(&other).unwrap();
        assert_eq!(name, "ann1");
        assert_eq!(lines.last().map(String::as_str), Some("exit"));
    }

    #[test]
    fn bfd_peers_by_address() {
        let text = r#"[{"multihop":false,"peer":"192.0.2.11","local":"192.0.2.1","status":"up"},
                       {"peer":"192.0.2.12","status":"down"}]"#;
        let peers = parse_bfd(&json("show bfd peers json", text).unwrap()).unwrap();
        assert_eq!(peers.get(&"192.0.2.11".parse().unwrap()), Some(&BfdState::Up));
        assert_eq!(peers.get(&"192.0.2.12".parse().unwrap()), Some(&BfdState::Down));
        assert!(
            parse_bfd(&json("x", r#"[{"peer":"192.0.2.11","status":"wobbly"}]"#).unwrap()).is_err()
        );
        assert!(parse_bfd(&json("x", r#"{}"#).unwrap()).is_err());
    }

    #[test]
    fn bgpd_config_turns_off_the_policy_defaults_and_names_every_option() {
        let config = RouterConfig::new(64500, Ipv4Addr::new(192, 0, 2, 1))
            .listen("192.0.2.1".parse().unwrap())
            .neighbor(
                Neighbor::new("192.0.2.11".parse().unwrap(), 64501)
                    .password("s3cret")
                    .passive()
                    .hold_time(9)
                    .bfd(Bfd::default())
                    .graceful_restart(120),
            )
            .neighbor(Neighbor::new("2001:db8::11".parse().unwrap(), 64500))
            .announce(
                Announcement::new("203.0.113.10/32".parse().unwrap())
                    .community(Community(65000, 1))
                    .large_community(LargeCommunity(65000, 1, 2))
                    .local_pref(200),
            );
        let text = render_bgpd(&config, "r", &mut RouteMaps::default()).unwrap();
        for want in [
            "no bgp ebgp-requires-policy",
            "no bgp network import-check",
            "bgp bestpath as-path multipath-relax",
            "bgp graceful-restart restart-time 120",
            "neighbor 192.0.2.11 timers 3 9",
            "neighbor 192.0.2.11 update-source 192.0.2.1",
            "neighbor 192.0.2.11 password s3cret",
            "neighbor 192.0.2.11 passive",
            "neighbor 192.0.2.11 bfd profile p0",
            "maximum-paths ibgp 64",
            "route-map gshut-in permit 10\n match community gshut\n set local-preference 0",
            "  neighbor 192.0.2.11 route-map gshut-in in",
            "network 203.0.113.10/32 route-map ann0",
            " set large-community 65000:1:2",
            " set local-preference 200",
            "address-family ipv6 unicast\n  maximum-paths 64\n  maximum-paths ibgp 64\n  neighbor 2001:db8::11 activate\n  neighbor 2001:db8::11 route-map gshut-in in\n  neighbor 2001:db8::11 next-hop-self",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
        assert!(render_bfdd(&config, "r").contains(" profile p0\n  receive-interval 300\n"));
        let disagree = config
            .neighbor(Neighbor::new("192.0.2.12".parse().unwrap(), 64501).graceful_restart(60));
        assert!(render_bgpd(&disagree, "r", &mut RouteMaps::default()).is_err());
    }
}
