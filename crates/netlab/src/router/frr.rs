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
//! - ECMP: `maximum-paths` (and `maximum-paths ibgp`) per address family; paths from
//!   neighbors of different ASNs are only "equal" with `bgp bestpath as-path multipath-relax`.
//!   zebra installs them as one route with a nexthop group (`ip route` shows `nhid N` and, with
//!   the kernel's default `nexthop_compat_mode`, the gateways too).
//! - Graceful restart: helper mode is FRR's default; the restart time is global
//!   (`bgp graceful-restart restart-time`), so neighbors must agree on it.
//! - BFD: `bfdd` runs beside zebra and bgpd; bgpd reaches it through zebra. Intervals live in
//!   a bfdd profile (`bfd` / `profile pN`), named by `neighbor X bfd profile pN`.
//! - `show bgp <afi> unicast json detail` prints, per prefix, an array whose first element is
//!   a header (`prefix`, `advertisedTo`) and whose other elements are paths: `aspath.segments`,
//!   `community.list`, `largeCommunity.list`, `locPrf` (only when the attribute is set: iBGP),
//!   `nexthops[].ip` with `scope` (`global` / `link-local`) for IPv6, `peer.peerId`,
//!   `bestpath.overall`, `stale`.
//! - `show bgp neighbors json` maps each neighbor address to `bgpState` and, once
//!   Established, `bgpTimerUpMsec`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use super::config::{
    Community, Family, LargeCommunity, LearnedRoute, RouterConfig, Session, SessionState,
};

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
pub(super) fn render_bgpd(config: &RouterConfig, hostname: &str) -> Result<String, String> {
    let restart_times: std::collections::BTreeSet<u16> =
        config.neighbors.iter().filter_map(|n| n.graceful_restart).collect();
    if restart_times.len() > 1 {
        return Err("FRR's graceful restart time is global: neighbors must agree on it".into());
    }
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "hostname {hostname}\nlog stdout informational\n!");
    for (index, a) in config.announce.iter().enumerate() {
        let _ = writeln!(w, "route-map ann{index} permit 10");
        if !a.communities.is_empty() {
            let list: Vec<String> = a.communities.iter().map(ToString::to_string).collect();
            let _ = writeln!(w, " set community {}", list.join(" "));
        }
        if !a.large_communities.is_empty() {
            let list: Vec<String> = a.large_communities.iter().map(ToString::to_string).collect();
            let _ = writeln!(w, " set large-community {}", list.join(" "));
        }
        if let Some(lp) = a.local_pref {
            let _ = writeln!(w, " set local-preference {lp}");
        }
        let _ = writeln!(w, "exit\n!");
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
        if n.graceful_restart.is_some() {
            let _ = writeln!(w, " neighbor {peer} graceful-restart-helper");
        }
    }
    for family in config.families() {
        let afi = afi(family);
        let _ = writeln!(w, " address-family {afi} unicast");
        if config.multipath {
            let _ = writeln!(w, "  maximum-paths {MAXIMUM_PATHS}");
            let _ = writeln!(w, "  maximum-paths ibgp {MAXIMUM_PATHS}");
        }
        for (index, a) in config.announce.iter().enumerate() {
            if Family::of_prefix(&a.prefix) == family {
                let _ = writeln!(w, "  network {} route-map ann{index}", a.prefix);
            }
        }
        for n in config.neighbors.iter().filter(|n| n.families.contains(&family)) {
            let _ = writeln!(w, "  neighbor {} activate", n.address);
            if n.asn == config.asn {
                let _ = writeln!(w, "  neighbor {} next-hop-self", n.address);
            }
        }
        let _ = writeln!(w, " exit-address-family");
    }
    let _ = writeln!(w, "exit");
    Ok(out)
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
        sessions.push(Session { neighbor, state, uptime });
    }
    sessions.sort_by_key(|s| s.neighbor);
    Ok(sessions)
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
    let communities =
        list("community").into_iter().map(str::parse::<Community>).collect::<Result<_, _>>()?;
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
        let text = r#"{"192.0.2.11":{"bgpState":"Established","bgpTimerUpMsec":5000},
                       "2001:db8::11":{"bgpState":"Active","bgpTimerUpMsec":0}}"#;
        let sessions = parse_neighbors(&json("show", text).unwrap()).unwrap();
        assert_eq!(sessions[0].state, SessionState::Established);
        assert_eq!(sessions[0].uptime, Some(Duration::from_secs(5)));
        assert_eq!(sessions[1].state, SessionState::Active);
        assert_eq!(sessions[1].uptime, None);
        let bad = r#"{"192.0.2.11":{"bgpState":"Dancing"}}"#;
        assert!(parse_neighbors(&json("show", bad).unwrap()).is_err());
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
        let text = render_bgpd(&config, "r").unwrap();
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
            "network 203.0.113.10/32 route-map ann0",
            " set large-community 65000:1:2",
            " set local-preference 200",
            "address-family ipv6 unicast\n  maximum-paths 64\n  maximum-paths ibgp 64\n  neighbor 2001:db8::11 activate\n  neighbor 2001:db8::11 next-hop-self",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
        assert!(render_bfdd(&config, "r").contains(" profile p0\n  receive-interval 300\n"));
        let disagree = config
            .neighbor(Neighbor::new("192.0.2.12".parse().unwrap(), 64501).graceful_restart(60));
        assert!(render_bgpd(&disagree, "r").is_err());
    }
}
