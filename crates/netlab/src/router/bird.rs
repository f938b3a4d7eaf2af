//! BIRD 2 (2.0.12 in Debian 12): the configuration file, and what `birdc` prints.
//!
//! Quirks this module relies on, checked against 2.0.12:
//! - `bird -f -c FILE -s SOCKET -P PIDFILE` runs in the foreground with its control socket
//!   where we say; `birdc -s SOCKET` talks to it. Without `-s` both use `/run/bird/bird.ctl`,
//!   shared by every BIRD of the machine, whatever its namespace (a UNIX socket path lives in
//!   the file system, not the network namespace).
//! - Timers are slow by default: `connect delay time` 5 s, `connect retry time` 120 s,
//!   `error wait time` 60-300 s. A lab restarts sessions all the time, so they are set to 1 s.
//! - eBGP channels need explicit filters (RFC 8212 behaviour); the import filter is written
//!   out, and it is where GRACEFUL_SHUTDOWN lowers LOCAL_PREF to 0 (BIRD does not by itself).
//! - iBGP next hops are resolved recursively by default, through a table the lab has no IGP
//!   for; `gateway direct` makes every next hop an on-link one, as the lab's neighbors are.
//!   iBGP sessions are also multihop by default, and a multihop session refuses
//!   `gateway direct` ("Multihop BGP cannot use direct gateway mode"): they get `direct`.
//! - ECMP needs `merge paths on` in the kernel protocol: BGP keeps one path per neighbor and
//!   the kernel protocol merges the "mergeable" ones (equal preference, local pref, AS path
//!   length, origin, MED) into one multipath route.
//! - BFD intervals are per interface (`protocol bfd { interface "*" {...} }`), not per
//!   session, so every neighbor asking for BFD must ask for the same intervals.
//! - Graceful restart: `graceful restart on` makes BIRD a helper and a restarting speaker;
//!   `graceful restart time` is the time it announces.
//!
//! `show route all` (every table) prints, for each route:
//!
//! ```text
//! Table master4:
//! 203.0.113.10/32      unicast [n0 15:35:58.315] * (100) [AS64501?]
//!         via 192.0.2.11 on eth0
//!         Type: BGP univ
//!         BGP.as_path: 64501
//!         BGP.next_hop: 192.0.2.11
//!         BGP.local_pref: 100
//!         BGP.community: (65000,1)
//!         BGP.large_community: (65000, 1, 2)
//!                      unicast [n1 15:36:01.002] (100) [AS64501?]
//!         ...
//! ```
//!
//! A line at column 0 starts a prefix (or a table); a line indented with spaces continues the
//! same prefix with another route; tab-indented lines are that route's attributes. `[n0 ...]`
//! names the protocol (ours are `n<index of the neighbor>`), `*` marks the best route,
//! `(100s)` a stale one, but only in the long-lived sense (the LLGR_STALE community): a route
//! kept by a plain graceful-restart helper carries no mark, so the caller also counts a route
//! whose session is not Established as stale. The IPv6 `BGP.next_hop` lists the global and the
//! link-local address; the first is taken.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use super::config::{Community, Family, LargeCommunity, RouterConfig};
use super::state::{BfdState, LearnedRoute, Session, SessionState};

/// The name of the BGP protocol of neighbor `index`.
fn protocol(index: usize) -> String {
    format!("n{index}")
}

/// Renders `bird.conf`.
pub(super) fn render(config: &RouterConfig) -> Result<String, String> {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# Written by netlab::router for one test; see crates/netlab/src/router.");
    let _ = writeln!(w, "log stderr all;");
    let _ = writeln!(w, "router id {};", config.router_id);
    // Interfaces and their addresses: BGP needs them to find on-link next hops.
    let _ = writeln!(w, "protocol device {{ scan time 1; }}");
    let families = config.families();
    if config.kernel {
        for family in &families {
            let (name, channel) = channel_names(*family);
            let merge = if config.multipath { "on" } else { "off" };
            // Only BGP routes: the static ones below are blackholes that exist to be
            // announced, not to route.
            let _ = writeln!(
                w,
                "protocol kernel kernel{name} {{ {channel} {{ import none; export where source = RTS_BGP; }}; merge paths {merge}; }}"
            );
        }
    }
    let bfds: Vec<_> = config.neighbors.iter().filter_map(|n| n.bfd).collect();
    if let Some(first) = bfds.first() {
        if bfds.iter().any(|b| b != first) {
            return Err("BIRD sets BFD intervals per interface: every neighbor with BFD must \
                        ask for the same intervals"
                .to_owned());
        }
        let _ = writeln!(
            w,
            "protocol bfd {{ interface \"*\" {{ min rx interval {} ms; min tx interval {} ms; multiplier {}; }}; }}",
            first.min_rx.as_millis(),
            first.min_tx.as_millis(),
            first.multiplier
        );
    }
    for family in [Family::Ipv4, Family::Ipv6] {
        let routes: Vec<_> =
            config.announce.iter().filter(|a| Family::of_prefix(&a.prefix) == family).collect();
        if routes.is_empty() {
            continue;
        }
        let (name, channel) = channel_names(family);
        let _ = writeln!(w, "protocol static announce{name} {{");
        let _ = writeln!(w, "  {channel};");
        for a in routes {
            let mut attrs = String::new();
            for c in &a.communities {
                let _ = write!(attrs, " bgp_community.add(({},{}));", c.0, c.1);
            }
            for c in &a.large_communities {
                let _ = write!(attrs, " bgp_large_community.add(({},{},{}));", c.0, c.1, c.2);
            }
            if let Some(lp) = a.local_pref {
                let _ = write!(attrs, " bgp_local_pref = {lp};");
            }
            let _ = writeln!(w, "  route {} blackhole {{{attrs} }};", a.prefix);
        }
        let _ = writeln!(w, "}}");
    }
    for (index, n) in config.neighbors.iter().enumerate() {
        let _ = writeln!(w, "protocol bgp {} {{", protocol(index));
        match config.local_address_for(n) {
            Some(local) => {
                let _ = writeln!(w, "  local {local} as {};", config.asn);
                // Bind the listening socket to that address only.
                let _ = writeln!(w, "  strict bind on;");
            }
            None => {
                let _ = writeln!(w, "  local as {};", config.asn);
            }
        }
        let _ = writeln!(w, "  neighbor {} as {};", n.address, n.asn);
        if n.asn == config.asn {
            // iBGP is multihop by default, which `gateway direct` refuses.
            let _ = writeln!(w, "  direct;");
        }
        if n.passive {
            let _ = writeln!(w, "  passive on;");
        }
        if let Some(password) = &n.password {
            let _ = writeln!(w, "  password \"{password}\";");
        }
        if n.bfd.is_some() {
            let _ = writeln!(w, "  bfd on;");
        }
        let _ = writeln!(w, "  hold time {};", n.hold_time);
        let _ = writeln!(w, "  connect delay time 1;");
        let _ = writeln!(w, "  connect retry time 1;");
        let _ = writeln!(w, "  error wait time 1, 2;");
        match n.graceful_restart {
            Some(time) => {
                let _ = writeln!(w, "  graceful restart on;");
                let _ = writeln!(w, "  graceful restart time {time};");
            }
            None => {
                let _ = writeln!(w, "  graceful restart off;");
            }
        }
        let import = if config.graceful_shutdown {
            // RFC 8326 §4: GRACEFUL_SHUTDOWN lowers LOCAL_PREF to 0.
            "import filter { if (65535, 0) ~ bgp_community then bgp_local_pref = 0; accept; };"
        } else {
            "import all;"
        };
        for family in &n.families {
            let (_, channel) = channel_names(*family);
            let _ = writeln!(
                w,
                "  {channel} {{ {import} export where source = RTS_STATIC; next hop self; gateway direct; }};"
            );
        }
        let _ = writeln!(w, "}}");
    }
    Ok(out)
}

fn channel_names(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::Ipv4 => ("4", "ipv4"),
        Family::Ipv6 => ("6", "ipv6"),
    }
}

/// Parses `birdc show protocols all`: per BGP protocol, the `BGP state:` line, then
/// `Neighbor address:`, then per channel `Routes:  N imported, ...`, summed.
pub(super) fn parse_protocols(text: &str) -> Result<Vec<Session>, String> {
    let mut sessions: Vec<Session> = Vec::new();
    let mut state = None;
    // Whether the last session pushed belongs to the protocol being read.
    let mut in_session = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(value) = trimmed.strip_prefix("BGP state:") {
            let value = value.trim();
            state = Some(
                SessionState::parse(value)
                    .ok_or_else(|| format!("unknown BGP state {value:?} in {line:?}"))?,
            );
        } else if let Some(value) = trimmed.strip_prefix("Neighbor address:") {
            let neighbor: IpAddr = value
                .trim()
                .parse()
                .map_err(|e| format!("bad neighbor address in {line:?}: {e}"))?;
            let state = state.take().ok_or_else(|| format!("{line:?} before a BGP state"))?;
            sessions.push(Session { neighbor, state, uptime: None, prefixes: None });
            in_session = true;
        } else if let Some(value) = trimmed.strip_prefix("Routes:") {
            let imported = value
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| format!("bad route count in {line:?}"))?;
            if in_session && let Some(session) = sessions.last_mut() {
                *session.prefixes.get_or_insert(0) += imported;
            }
        } else if !line.starts_with(' ') {
            // A new protocol's first line.
            state = None;
            in_session = false;
        }
    }
    sessions.sort_by_key(|s| s.neighbor);
    Ok(sessions)
}

/// Parses `birdc show bfd sessions`:
///
/// ```text
/// bfd1:
/// IP address                Interface  State      Since         Interval  Timeout
/// 192.0.2.11                eth0       Up         16:11:37.312    0.100    0.300
/// ```
pub(super) fn parse_bfd(text: &str) -> Result<BTreeMap<IpAddr, BfdState>, String> {
    let mut peers = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [addr, _iface, state, ..] = fields[..] else { continue };
        // Header, banner and protocol-name lines do not start with an address.
        let Ok(addr) = addr.parse::<IpAddr>() else { continue };
        let state =
            BfdState::parse(state).ok_or_else(|| format!("unknown BFD state in {line:?}"))?;
        peers.insert(addr, state);
    }
    Ok(peers)
}

/// Parses `birdc show route all` into routes of BGP protocols `n<index>`; `neighbors` maps
/// the index to the neighbor's address. Routes of other protocols (static, kernel) are left
/// out. `stale` is only BIRD's own mark; see the module docs.
pub(super) fn parse_routes(text: &str, neighbors: &[IpAddr]) -> Result<Vec<LearnedRoute>, String> {
    let mut routes = Vec::new();
    let mut prefix: Option<IpNet> = None;
    let mut current: Option<LearnedRoute> = None;
    let finish = |current: &mut Option<LearnedRoute>, routes: &mut Vec<LearnedRoute>| {
        if let Some(route) = current.take()
            && !route.next_hop.is_unspecified()
        {
            routes.push(route);
        }
    };
    for line in text.lines() {
        if line.is_empty() || line.starts_with("BIRD ") || line.starts_with("Table ") {
            finish(&mut current, &mut routes);
            if line.starts_with("Table ") {
                prefix = None;
            }
            continue;
        }
        if line.starts_with('\t') {
            if let Some(route) = current.as_mut() {
                attribute(route, line.trim()).map_err(|e| format!("{e} in {line:?}"))?;
            }
            continue;
        }
        // A route line: `PREFIX  unicast [proto since] * (pref) [ASn?]`, or the same without
        // the prefix (another route of the previous prefix).
        finish(&mut current, &mut routes);
        if !line.starts_with(' ') {
            let first = line.split_whitespace().next().unwrap_or_default();
            prefix = Some(first.parse().map_err(|e| format!("bad prefix in {line:?}: {e}"))?);
        }
        let Some(prefix) = prefix else {
            return Err(format!("a route line before any prefix: {line:?}"));
        };
        let open = line.find('[').ok_or_else(|| format!("no [protocol ...] in {line:?}"))?;
        let close = line[open..].find(']').map(|i| open + i).ok_or("unclosed [")?;
        let proto = line[open + 1..close].split_whitespace().next().unwrap_or_default();
        let rest = &line[close + 1..];
        let Some(from) = proto
            .strip_prefix('n')
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| neighbors.get(i).copied())
        else {
            // Not one of our BGP protocols.
            continue;
        };
        let flags = rest
            .find('(')
            .and_then(|i| rest[i + 1..].find(')').map(|j| &rest[i + 1..i + 1 + j]))
            .unwrap_or_default();
        current = Some(LearnedRoute {
            prefix,
            from,
            // Filled by `BGP.next_hop`; a route without one is dropped by `finish`.
            next_hop: IpAddr::from([0, 0, 0, 0]),
            as_path: Vec::new(),
            communities: Default::default(),
            large_communities: Default::default(),
            local_pref: None,
            stale: flags.contains('s'),
            best: rest.trim_start().starts_with('*'),
        });
    }
    finish(&mut current, &mut routes);
    routes.sort();
    Ok(routes)
}

fn attribute(route: &mut LearnedRoute, line: &str) -> Result<(), String> {
    let Some((key, value)) = line.split_once(':') else { return Ok(()) };
    let value = value.trim();
    match key {
        "BGP.next_hop" => {
            let first = value.split_whitespace().next().unwrap_or_default();
            route.next_hop = first.parse().map_err(|e| format!("bad next hop: {e}"))?;
        }
        "BGP.as_path" => {
            route.as_path = value
                .split_whitespace()
                // AS sets print as `{64501 64502}`.
                .map(|t| t.trim_matches(|c| c == '{' || c == '}'))
                .filter(|t| !t.is_empty())
                .map(|t| t.parse::<u32>().map_err(|e| format!("bad AS {t:?}: {e}")))
                .collect::<Result<_, _>>()?;
        }
        "BGP.local_pref" => {
            route.local_pref = Some(value.parse().map_err(|e| format!("bad local pref: {e}"))?);
        }
        "BGP.community" => {
            for tuple in tuples(value) {
                let c = tuple.replace(' ', "").replace(',', ":").parse::<Community>()?;
                route.communities.insert(c);
            }
        }
        "BGP.large_community" => {
            for tuple in tuples(value) {
                let c = tuple.replace(' ', "").replace(',', ":").parse::<LargeCommunity>()?;
                route.large_communities.insert(c);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The insides of `(a,b) (c,d)`.
fn tuples(value: &str) -> impl Iterator<Item = &str> {
    value.split('(').filter_map(|part| part.split_once(')').map(|(inside, _)| inside))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;
    use crate::router::config::{Announcement, Bfd, Neighbor};

    const ROUTES: &str = "BIRD 2.0.12 ready.
Table master4:
203.0.113.10/32      unicast [n0 15:35:58.315] * (100) [AS64501?]
\tvia 192.0.2.11 on eth0
\tType: BGP univ
\tBGP.origin: Incomplete
\tBGP.as_path: 64501 64510
\tBGP.next_hop: 192.0.2.11
\tBGP.local_pref: 100
\tBGP.community: (65000,1) (65000,2)
\tBGP.large_community: (65000, 1, 2)
                     unicast [n1 15:36:00.001] (100s) [AS64501?]
\tvia 192.0.2.12 on eth0
\tType: BGP univ
\tBGP.origin: Incomplete
\tBGP.as_path: 64501
\tBGP.next_hop: 192.0.2.12
\tBGP.local_pref: 100
203.0.113.99/32      blackhole [announce4 15:35:50.000] * (200)
\tType: static univ

Table master6:
2001:db8:1::10/128   unicast [n2 15:35:57.566] * (100) [AS64501?]
\tvia 2001:db8::11 on eth0
\tType: BGP univ
\tBGP.origin: Incomplete
\tBGP.as_path: 64501
\tBGP.next_hop: 2001:db8::11 fe80::1
\tBGP.local_pref: 200
";

    fn neighbors() -> Vec<IpAddr> {
        ["192.0.2.11", "192.0.2.12", "2001:db8::11"].iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn routes_of_our_protocols_with_their_attributes() {
        let routes = parse_routes(ROUTES, &neighbors()).unwrap();
        assert_eq!(routes.len(), 3, "{routes:#?}");
        let first = &routes[0];
        assert_eq!(first.prefix, "203.0.113.10/32".parse::<IpNet>().unwrap());
        assert_eq!(first.from, neighbors()[0]);
        assert_eq!(first.as_path, vec![64501, 64510]);
        assert_eq!(
            first.communities.iter().copied().collect::<Vec<_>>(),
            vec![Community(65000, 1), Community(65000, 2)]
        );
        assert_eq!(
            first.large_communities.iter().copied().collect::<Vec<_>>(),
            vec![LargeCommunity(65000, 1, 2)]
        );
        assert!(first.best && !first.stale);
        let second = &routes[1];
        assert_eq!(second.prefix, first.prefix, "an indented line continues the prefix");
        assert_eq!(second.next_hop, "192.0.2.12".parse::<IpAddr>().unwrap());
        assert!(!second.best && second.stale);
        let v6 = &routes[2];
        assert_eq!(v6.next_hop, "2001:db8::11".parse::<IpAddr>().unwrap(), "global first");
        assert_eq!(v6.local_pref, Some(200));
    }

    #[test]
    fn bad_text_is_an_error_not_a_panic() {
        for bad in [
            "Table master4:\nnot-a-prefix  unicast [n0 x] * (100)\n",
            "Table master4:\n203.0.113.1/32  unicast [n0 x] * (100)\n\tBGP.next_hop: nope\n",
            "Table master4:\n203.0.113.1/32  unicast [n0 x\n",
            "Table master4:\n                 unicast [n0 x] * (100)\n",
            "Table master4:\n203.0.113.1/32  unicast [n0 x] * (100)\n\tBGP.community: (1,x)\n",
        ] {
            assert!(parse_routes(bad, &neighbors()).is_err(), "{bad}");
        }
    }

    #[test]
    fn protocol_states_by_neighbor() {
        let text = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     15:35:53.384

n0         BGP        ---        up     15:35:58.315  Established
  BGP state:          Established
    Neighbor address: 192.0.2.11
    Neighbor AS:      64501
  Channel ipv4
    State:          UP
    Routes:         2 imported, 0 exported, 1 preferred
  Channel ipv6
    Routes:         1 imported, 0 exported, 1 preferred
n1         BGP        ---        start  15:35:53.384  Active
  BGP state:          Active
    Neighbor address: 192.0.2.12
";
        let sessions = parse_protocols(text).unwrap();
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].neighbor, neighbors()[0]);
        assert_eq!(sessions[0].state, SessionState::Established);
        assert_eq!(sessions[0].prefixes, Some(3), "summed over the channels");
        assert_eq!(sessions[1].state, SessionState::Active);
        assert_eq!(sessions[1].prefixes, None, "no channel up");
        assert!(parse_protocols("  BGP state: Flying\n").is_err());
        assert!(parse_protocols("    Routes:  many imported\n").is_err());
    }

    #[test]
    fn bfd_sessions_by_address() {
        let text = "BIRD 2.0.12 ready.
bfd1:
IP address                Interface  State      Since         Interval  Timeout
192.0.2.11                eth0       Up         16:11:37.312    0.100    0.300
2001:db8::11              eth0       Down       16:11:37.312    1.000    0.000
";
        let peers = parse_bfd(text).unwrap();
        assert_eq!(peers.get(&neighbors()[0]), Some(&BfdState::Up));
        assert_eq!(peers.get(&neighbors()[2]), Some(&BfdState::Down));
        assert!(parse_bfd("192.0.2.11  eth0  Sideways  x\n").is_err());
    }

    #[test]
    fn config_has_the_lab_timers_filters_and_attributes() {
        let config = RouterConfig::new(64500, Ipv4Addr::new(192, 0, 2, 1))
            .listen("192.0.2.1".parse().unwrap())
            .neighbor(
                Neighbor::new("192.0.2.11".parse().unwrap(), 64501)
                    .password("s3cret")
                    .passive()
                    .hold_time(9)
                    .graceful_restart(120)
                    .bfd(Bfd { min_rx: Duration::from_millis(100), ..Bfd::default() }),
            )
            .announce(
                Announcement::new("203.0.113.10/32".parse().unwrap())
                    .community(Community(65000, 1))
                    .local_pref(200),
            );
        let text = render(&config).unwrap();
        for want in [
            "router id 192.0.2.1;",
            "merge paths on;",
            "min rx interval 100 ms;",
            "route 203.0.113.10/32 blackhole { bgp_community.add((65000,1)); bgp_local_pref = 200; };",
            "local 192.0.2.1 as 64500;",
            "neighbor 192.0.2.11 as 64501;",
            "passive on;",
            "password \"s3cret\";",
            "bfd on;",
            "hold time 9;",
            "graceful restart time 120;",
            "ipv4 { import filter { if (65535, 0) ~ bgp_community then bgp_local_pref = 0;",
        ] {
            assert!(text.contains(want), "{want} missing in\n{text}");
        }
        let differing = config
            .clone()
            .neighbor(Neighbor::new("192.0.2.12".parse().unwrap(), 64501).bfd(Bfd::default()));
        assert!(render(&differing).is_err());
    }
}
