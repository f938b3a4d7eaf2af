//! GoBGP (3.10.0 in Debian 12): the TOML configuration, `gobgp global rib add` arguments, and
//! what `gobgp -j` prints.
//!
//! Quirks this module relies on, checked against 3.10.0:
//! - The gRPC API listens on `:50051` by default, on every address. A lab gives
//!   `--api-hosts 127.0.0.1:50051`: the namespace's own loopback, so parallel routers never
//!   meet, and `gobgp` (run inside the namespace) finds it at its default address.
//!   `--pprof-disable` drops the profiler's `localhost:6060` listener.
//! - Timers are slow by default: `connect-retry` 120 s and `idle-hold-time-after-reset` 30 s
//!   (how long a session stays Idle after it went down); both are set to 1 s.
//! - GoBGP keeps the routes it learns in its RIB only; it has no kernel installation of its
//!   own. Its ZAPI client (`[zebra.config]`) does not work with FRR 8.4's zebra: with
//!   `version = 6` and `software-name = "frr8.2"` or `"frr8"` it fails to decode zebra's
//!   messages and panics (`slice bounds out of range`, `internal/pkg/zebra/zapi.go`). [`RouterConfig::kernel`] therefore does
//!   nothing for it, and [`super::Router::kernel_next_hops`] is an error for a GoBGP router
//!   rather than an empty answer that would look like a missing route.
//! - Multipath is `[global.use-multiple-paths.config] enabled`; it changes what GoBGP
//!   announces onwards, while `gobgp global rib` lists every path it holds anyway.
//! - Graceful shutdown needs an import policy (`[global.apply-policy]`, a community set, a
//!   policy setting LOCAL_PREF); `set-local-pref = 0` sets nothing, so it sets 1.
//! - No BFD in 3.10: refused with an error. Nor hold time 0 (RFC 4271 §4.2: no keepalives):
//!   GoBGP takes a `hold-time` of 0 for "not set" and uses 90 s.
//! - Graceful restart: `helper-only = true` would announce the capability without address
//!   families, and a restarting GoBGP would then lose its routes at the helper; it is left
//!   off, so GoBGP is helper and restarting speaker (the flag `-r` would set the restart
//!   state bit after a restart; a crashed and restarted lab daemon does not give it).
//! - `gobgp -j neighbor` prints a list of peers: `state.neighbor_address`,
//!   `state.session_state` as a number (1 idle, 2 connect, 3 active, 4 opensent,
//!   5 openconfirm, 6 established), `timers.state.uptime.seconds`, which is the Unix time
//!   the session came up, not a duration, and `afi_safis[].state.accepted` (left out when 0).
//! - `gobgp -j global rib -a ipv4|ipv6` maps each prefix to its paths: `neighbor-ip`, `best`,
//!   `stale`, and `attrs` by type code (RFC 4271 §5): 2 AS_PATH (`as_paths[].asns`),
//!   3 NEXT_HOP (`nexthop`), 5 LOCAL_PREF (`value`), 8 COMMUNITIES (`communities` as 32-bit
//!   numbers), 14 MP_REACH_NLRI (`nexthop`, IPv6), 32 LARGE_COMMUNITY (`value[]` of
//!   `ASN`/`LocalData1`/`LocalData2`). Locally originated paths have no `neighbor-ip`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use super::config::{Announcement, Community, Family, LargeCommunity, RouterConfig};
use super::state::{LearnedRoute, Session, SessionState};

/// LOCAL_PREF given to a GRACEFUL_SHUTDOWN path. RFC 8326 §4 says 0, which GoBGP's
/// `set-local-pref` cannot express: with 0 the path carries no LOCAL_PREF at all (0 is its
/// "not set", seen with 3.10); 1 is below every other path alike.
const GSHUT_LOCAL_PREF: u32 = 1;

/// The gRPC API address inside the router's namespace.
pub(super) const API: &str = "127.0.0.1:50051";

/// Renders `gobgpd.toml`. Refuses what GoBGP 3.10 cannot do (see the module docs).
pub(super) fn render(config: &RouterConfig) -> Result<String, String> {
    if config.wants_bfd() {
        return Err("GoBGP 3.10 has no BFD".into());
    }
    if let Some(n) = config.neighbors.iter().find(|n| n.hold_time == 0) {
        return Err(format!(
            "neighbor {}: GoBGP reads hold-time 0 as unset and uses 90 s",
            n.address
        ));
    }
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# Written by netlab::router for one test.");
    let _ = writeln!(
        w,
        "[global.config]\n  as = {}\n  router-id = \"{}\"",
        config.asn, config.router_id
    );
    if !config.listen.is_empty() {
        let list: Vec<String> = config.listen.iter().map(|a| format!("\"{a}\"")).collect();
        let _ = writeln!(w, "  local-address-list = [{}]", list.join(", "));
    }
    if config.multipath {
        let _ = writeln!(w, "[global.use-multiple-paths.config]\n  enabled = true");
    }
    if config.graceful_shutdown {
        // RFC 8326 §4: GRACEFUL_SHUTDOWN lowers LOCAL_PREF (see GSHUT_LOCAL_PREF).
        let _ = writeln!(w, "[global.apply-policy.config]");
        let _ = writeln!(w, "  import-policy-list = [\"gshut\"]");
        let _ = writeln!(w, "  default-import-policy = \"accept-route\"");
        let _ = writeln!(w, "[[defined-sets.bgp-defined-sets.community-sets]]");
        let _ = writeln!(w, "  community-set-name = \"gshut\"\n  community-list = [\"65535:0\"]");
        let _ = writeln!(w, "[[policy-definitions]]\n  name = \"gshut\"");
        let _ = writeln!(w, "  [[policy-definitions.statements]]\n    name = \"lower\"");
        let _ = writeln!(
            w,
            "    [policy-definitions.statements.conditions.bgp-conditions.match-community-set]"
        );
        let _ = writeln!(w, "      community-set = \"gshut\"\n      match-set-options = \"any\"");
        let _ = writeln!(w, "    [policy-definitions.statements.actions]");
        let _ = writeln!(w, "      route-disposition = \"accept-route\"");
        let _ = writeln!(w, "    [policy-definitions.statements.actions.bgp-actions]");
        let _ = writeln!(w, "      set-local-pref = {GSHUT_LOCAL_PREF}");
    }
    for n in &config.neighbors {
        let _ = writeln!(w, "[[neighbors]]\n  [neighbors.config]");
        let _ = writeln!(w, "    neighbor-address = \"{}\"\n    peer-as = {}", n.address, n.asn);
        if let Some(password) = &n.password {
            let _ = writeln!(w, "    auth-password = \"{password}\"");
        }
        let _ = writeln!(w, "  [neighbors.timers.config]");
        let _ = writeln!(w, "    hold-time = {}", n.hold_time);
        let _ = writeln!(w, "    keepalive-interval = {}", n.hold_time / 3);
        let _ = writeln!(w, "    connect-retry = 1\n    idle-hold-time-after-reset = 1");
        let local = config.local_address_for(n);
        if n.passive || local.is_some() {
            let _ = writeln!(w, "  [neighbors.transport.config]");
            if n.passive {
                let _ = writeln!(w, "    passive-mode = true");
            }
            if let Some(local) = local {
                let _ = writeln!(w, "    local-address = \"{local}\"");
            }
        }
        if let Some(time) = n.graceful_restart {
            let _ = writeln!(w, "  [neighbors.graceful-restart.config]");
            let _ = writeln!(w, "    enabled = true\n    restart-time = {time}");
        }
        for family in &n.families {
            let _ = writeln!(w, "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]");
            let _ = writeln!(w, "      afi-safi-name = \"{}\"", afi_safi(*family));
            if n.graceful_restart.is_some() {
                let _ = writeln!(w, "    [neighbors.afi-safis.mp-graceful-restart.config]");
                let _ = writeln!(w, "      enabled = true");
            }
        }
    }
    Ok(out)
}

fn afi_safi(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4-unicast",
        Family::Ipv6 => "ipv6-unicast",
    }
}

/// `-a ipv4` / `-a ipv6`.
pub(super) fn family_arg(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

/// The arguments of `gobgp` that add (`add`) or remove (`del`) an announcement.
pub(super) fn rib_args(verb: &str, a: &Announcement) -> Vec<String> {
    let mut args = vec![
        "global".to_owned(),
        "rib".to_owned(),
        "-a".to_owned(),
        family_arg(Family::of_prefix(&a.prefix)).to_owned(),
        verb.to_owned(),
        a.prefix.to_string(),
    ];
    if verb == "add" {
        if !a.communities.is_empty() {
            let list: Vec<String> = a.communities.iter().map(ToString::to_string).collect();
            args.extend(["community".to_owned(), list.join(",")]);
        }
        if !a.large_communities.is_empty() {
            let list: Vec<String> = a.large_communities.iter().map(ToString::to_string).collect();
            args.extend(["large-community".to_owned(), list.join(",")]);
        }
        if let Some(lp) = a.local_pref {
            args.extend(["local-pref".to_owned(), lp.to_string()]);
        }
    }
    args
}

/// Parses `gobgp -j neighbor`; `now` (Unix seconds) turns GoBGP's "up since" into an uptime.
pub(super) fn parse_neighbors(json: &Value, now: u64) -> Result<Vec<Session>, String> {
    let peers = json.as_array().ok_or("not a JSON list")?;
    let mut sessions = Vec::new();
    for peer in peers {
        let state = &peer["state"];
        let neighbor = state["neighbor_address"]
            .as_str()
            .ok_or("a peer without state.neighbor_address")?
            .parse::<IpAddr>()
            .map_err(|e| format!("bad neighbor address: {e}"))?;
        let code = state["session_state"].as_u64().unwrap_or(1);
        let state = match code {
            1 => SessionState::Idle,
            2 => SessionState::Connect,
            3 => SessionState::Active,
            4 => SessionState::OpenSent,
            5 => SessionState::OpenConfirm,
            6 => SessionState::Established,
            other => return Err(format!("{neighbor}: unknown session_state {other}")),
        };
        let since = peer["timers"]["state"]["uptime"]["seconds"].as_u64();
        let uptime = (state == SessionState::Established)
            .then(|| since.map(|s| Duration::from_secs(now.saturating_sub(s))))
            .flatten();
        let mut prefixes = None;
        for family in peer["afi_safis"].as_array().into_iter().flatten() {
            // Zero counts are left out of the JSON; an enabled family without one has none.
            if family["state"]["enabled"].as_bool() == Some(true) {
                *prefixes.get_or_insert(0) += family["state"]["accepted"].as_u64().unwrap_or(0);
            }
        }
        sessions.push(Session { neighbor, state, uptime, prefixes });
    }
    sessions.sort_by_key(|s| s.neighbor);
    Ok(sessions)
}

/// Parses `gobgp -j global rib -a ...`: learned paths only (locally originated ones have no
/// neighbor).
pub(super) fn parse_rib(json: &Value) -> Result<Vec<LearnedRoute>, String> {
    let Some(map) = json.as_object() else {
        // An empty RIB prints `null` or nothing.
        return if json.is_null() { Ok(Vec::new()) } else { Err("not a JSON object".into()) };
    };
    let mut out = Vec::new();
    for (prefix, paths) in map {
        let prefix = prefix.parse().map_err(|e| format!("bad prefix {prefix:?}: {e}"))?;
        for path in paths.as_array().ok_or_else(|| format!("{prefix}: not a list"))? {
            let Some(from) = path["neighbor-ip"].as_str() else { continue };
            let from =
                from.parse::<IpAddr>().map_err(|e| format!("{prefix}: bad neighbor: {e}"))?;
            if from.is_unspecified() {
                continue;
            }
            out.push(parse_path(prefix, from, path).map_err(|e| format!("{prefix}: {e}"))?);
        }
    }
    out.sort();
    Ok(out)
}

fn parse_path(prefix: ipnet::IpNet, from: IpAddr, path: &Value) -> Result<LearnedRoute, String> {
    let mut route = LearnedRoute {
        prefix,
        from,
        next_hop: IpAddr::from([0, 0, 0, 0]),
        as_path: Vec::new(),
        communities: Default::default(),
        large_communities: Default::default(),
        local_pref: None,
        stale: path["stale"].as_bool().unwrap_or(false),
        best: path["best"].as_bool().unwrap_or(false),
    };
    let mut has_next_hop = false;
    for attr in path["attrs"].as_array().ok_or("no attrs")? {
        let number = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
        match attr["type"].as_u64() {
            Some(2) => {
                for segment in attr["as_paths"].as_array().into_iter().flatten() {
                    for asn in segment["asns"].as_array().into_iter().flatten() {
                        route.as_path.push(number(asn).ok_or("bad ASN")?);
                    }
                }
            }
            Some(3 | 14) => {
                let hop = attr["nexthop"].as_str().ok_or("next hop attribute without nexthop")?;
                route.next_hop = hop.parse().map_err(|e| format!("bad next hop {hop:?}: {e}"))?;
                has_next_hop = true;
            }
            Some(5) => route.local_pref = Some(number(&attr["value"]).ok_or("bad LOCAL_PREF")?),
            Some(8) => {
                for c in attr["communities"].as_array().into_iter().flatten() {
                    route
                        .communities
                        .insert(Community::from_u32(number(c).ok_or("bad community")?));
                }
            }
            Some(32) => {
                for c in attr["value"].as_array().into_iter().flatten() {
                    let part = |k: &str| number(&c[k]).ok_or("bad large community");
                    route.large_communities.insert(LargeCommunity(
                        part("ASN")?,
                        part("LocalData1")?,
                        part("LocalData2")?,
                    ));
                }
            }
            _ => {}
        }
    }
    if !has_next_hop {
        return Err("a path without a next hop".into());
    }
    Ok(route)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::router::config::{Bfd, Neighbor};

    #[test]
    fn rib_paths_with_their_attributes() {
        let text = r#"{"203.0.113.10/32":[{"nlri":{"prefix":"203.0.113.10/32"},"best":true,
            "attrs":[{"type":1,"value":2},{"type":2,"as_paths":[{"segment_type":2,"num":1,"asns":[64501]}]},
                     {"type":3,"nexthop":"192.0.2.11"},{"type":5,"value":200},
                     {"type":8,"communities":[4259840001]},
                     {"type":32,"value":[{"ASN":65000,"LocalData1":1,"LocalData2":2}]}],
            "stale":false,"neighbor-ip":"192.0.2.11"},
            {"attrs":[{"type":3,"nexthop":"0.0.0.0"}],"neighbor-ip":"<nil>"},
            {"attrs":[{"type":3,"nexthop":"0.0.0.0"}]}],
          "2001:db8:1::10/128":[{"attrs":[{"type":14,"nexthop":"2001:db8::11","afi":2,"safi":1}],
            "stale":true,"neighbor-ip":"2001:db8::11"}]}"#;
        let json: Value = serde_json::from_str(text).unwrap();
        assert!(parse_rib(&json).is_err(), "a neighbor-ip that is no address is an error");
        let text = text.replace(r#","neighbor-ip":"<nil>""#, r#","neighbor-ip":"0.0.0.0""#);
        let routes = parse_rib(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(routes.len(), 2, "{routes:#?}");
        let v4 = &routes[0];
        assert_eq!(v4.as_path, vec![64501]);
        assert_eq!(v4.local_pref, Some(200));
        assert!(v4.communities.contains(&Community(65000, 1)));
        assert!(v4.large_communities.contains(&LargeCommunity(65000, 1, 2)));
        assert!(v4.best);
        let v6 = &routes[1];
        assert_eq!(v6.next_hop, "2001:db8::11".parse::<IpAddr>().unwrap());
        assert!(v6.stale && !v6.best);
        assert!(parse_rib(&Value::Null).unwrap().is_empty());
        let no_hop: Value =
            serde_json::from_str(r#"{"192.0.2.0/24":[{"attrs":[],"neighbor-ip":"192.0.2.2"}]}"#)
                .unwrap();
        assert!(parse_rib(&no_hop).is_err());
    }

    #[test]
    fn neighbors_state_codes_and_uptime_from_the_up_timestamp() {
        let text = r#"[{"state":{"neighbor_address":"192.0.2.11","session_state":6},
                        "timers":{"state":{"uptime":{"seconds":1000}}},
                        "afi_safis":[{"state":{"enabled":true,"received":2,"accepted":2}},
                                     {"state":{"enabled":true}}]},
                       {"state":{"neighbor_address":"192.0.2.12","session_state":3}}]"#;
        let sessions = parse_neighbors(&serde_json::from_str(text).unwrap(), 1010).unwrap();
        assert_eq!(sessions[0].state, SessionState::Established);
        assert_eq!(sessions[0].uptime, Some(Duration::from_secs(10)));
        assert_eq!(sessions[0].prefixes, Some(2));
        assert_eq!(sessions[1].prefixes, None);
        assert_eq!(sessions[1].state, SessionState::Active);
        let bad = r#"[{"state":{"neighbor_address":"192.0.2.11","session_state":9}}]"#;
        assert!(parse_neighbors(&serde_json::from_str(bad).unwrap(), 0).is_err());
    }

    #[test]
    fn config_and_rib_arguments() {
        let config = RouterConfig::new(64500, Ipv4Addr::new(192, 0, 2, 1))
            .kernel(false)
            .listen("192.0.2.1".parse().unwrap())
            .neighbor(
                Neighbor::new("192.0.2.11".parse().unwrap(), 64501)
                    .password("s3cret")
                    .passive()
                    .hold_time(9)
                    .graceful_restart(120),
            );
        let text = render(&config).unwrap();
        for want in [
            "local-address-list = [\"192.0.2.1\"]",
            "auth-password = \"s3cret\"",
            "hold-time = 9\n    keepalive-interval = 3",
            "passive-mode = true",
            "restart-time = 120",
            "afi-safi-name = \"ipv4-unicast\"",
            "import-policy-list = [\"gshut\"]",
            "community-list = [\"65535:0\"]",
            "set-local-pref = 1",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
        let bfd = config
            .neighbor(Neighbor::new("192.0.2.12".parse().unwrap(), 64501).bfd(Bfd::default()));
        assert!(render(&bfd).is_err());
        let a = Announcement::new("2001:db8:1::/64".parse().unwrap())
            .community(Community(65000, 1))
            .community(Community(65000, 2))
            .local_pref(200);
        assert_eq!(
            rib_args("add", &a).join(" "),
            "global rib -a ipv6 add 2001:db8:1::/64 community 65000:1,65000:2 local-pref 200"
        );
        assert_eq!(rib_args("del", &a).join(" "), "global rib -a ipv6 del 2001:db8:1::/64");
    }
}
