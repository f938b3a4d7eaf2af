//! The typed description of a test router ([`RouterConfig`]): the same types whichever
//! daemon plays the router.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;

/// Which routing daemon from Debian plays the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouterKind {
    /// BIRD 2 (`bird`, `birdc`; Debian 12 ships 2.0.12).
    Bird,
    /// FRRouting (`zebra`, `bgpd`, `bfdd` in `/usr/lib/frr`, `vtysh`; Debian 12 ships 8.4.4).
    Frr,
    /// GoBGP (`gobgpd`, `gobgp`; Debian 12 ships 3.10.0).
    Gobgp,
}

impl RouterKind {
    /// Every kind, for tests that run against each.
    pub const ALL: [RouterKind; 3] = [RouterKind::Bird, RouterKind::Frr, RouterKind::Gobgp];

    /// A short lower-case name (`bird`, `frr`, `gobgp`), for labels and messages.
    pub fn label(self) -> &'static str {
        match self {
            RouterKind::Bird => "bird",
            RouterKind::Frr => "frr",
            RouterKind::Gobgp => "gobgp",
        }
    }

    /// The programs this kind runs, for [`crate::preflight`]: names are looked up on `PATH`,
    /// absolute paths as they are (FRR's daemons live in `/usr/lib/frr`, which is not on
    /// `PATH`; only `vtysh` is).
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            RouterKind::Bird => &["bird", "birdc"],
            RouterKind::Frr => &[super::frr::ZEBRA, super::frr::BGPD, super::frr::BFDD, "vtysh"],
            RouterKind::Gobgp => &["gobgpd", "gobgp"],
        }
    }

    /// The Debian package that carries the programs.
    pub fn package(self) -> &'static str {
        match self {
            RouterKind::Bird => "bird2",
            RouterKind::Frr => "frr",
            RouterKind::Gobgp => "gobgpd",
        }
    }
}

impl fmt::Display for RouterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// An address family (AFI/SAFI; unicast only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4 unicast (AFI 1, SAFI 1).
    Ipv4,
    /// IPv6 unicast (AFI 2, SAFI 1).
    Ipv6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: IpAddr) -> Family {
        if addr.is_ipv4() { Family::Ipv4 } else { Family::Ipv6 }
    }

    /// The family of a prefix.
    pub fn of_prefix(prefix: &IpNet) -> Family {
        Family::of(prefix.addr())
    }
}

/// A standard community (RFC 1997), `asn:value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Community(pub u16, pub u16);

impl Community {
    /// The 32-bit value on the wire (high half the ASN), which GoBGP's JSON prints.
    pub fn from_u32(value: u32) -> Community {
        // Truncations are the point: the two 16-bit halves.
        Community((value >> 16) as u16, value as u16)
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

impl FromStr for Community {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s.split_once(':').ok_or_else(|| format!("community {s:?} is not a:b"))?;
        let part = |p: &str| p.trim().parse::<u16>().map_err(|e| format!("community {s:?}: {e}"));
        Ok(Community(part(a)?, part(b)?))
    }
}

/// A large community (RFC 8092), `global:local1:local2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeCommunity(pub u32, pub u32, pub u32);

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.0, self.1, self.2)
    }
}

impl FromStr for LargeCommunity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let [a, b, c] = parts[..] else {
            return Err(format!("large community {s:?} is not a:b:c"));
        };
        let part =
            |p: &str| p.trim().parse::<u32>().map_err(|e| format!("large community {s:?}: {e}"));
        Ok(LargeCommunity(part(a)?, part(b)?, part(c)?))
    }
}

/// BFD (RFC 5880/5881, single hop) on a session, with the intervals the router asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bfd {
    /// Required minimum receive interval.
    pub min_rx: Duration,
    /// Desired minimum transmit interval.
    pub min_tx: Duration,
    /// Detection multiplier: the session is down after this many missed packets.
    pub multiplier: u8,
}

impl Default for Bfd {
    /// 300 ms × 3: FRR's and MetalLB's default profile, detection in under a second.
    fn default() -> Self {
        Bfd {
            min_rx: Duration::from_millis(300),
            min_tx: Duration::from_millis(300),
            multiplier: 3,
        }
    }
}

/// One BGP neighbor of the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// The neighbor's address (the session's remote end).
    pub address: IpAddr,
    /// The neighbor's ASN; equal to the router's makes the session iBGP.
    pub asn: u32,
    /// TCP MD5 signature key (RFC 2385).
    pub password: Option<String>,
    /// BFD on this session.
    pub bfd: Option<Bfd>,
    /// Only accept connections, never open one (the speaker dials, as MetalLB's does).
    pub passive: bool,
    /// Hold time offered, in seconds (RFC 4271 §4.2: 0 or at least 3); keepalives at a third.
    pub hold_time: u16,
    /// Graceful restart (RFC 4724) with this neighbor: as helper, keep its routes, marked
    /// stale, across its restart; as a restarting speaker (every daemon here is both when
    /// asked), announce the capability with the address families, so a daemon playing a node
    /// keeps its routes at the router across a crash. The value is the restart time this
    /// router announces, in seconds.
    pub graceful_restart: Option<u16>,
    /// Address families negotiated on the session.
    pub families: BTreeSet<Family>,
    /// The router's own address for this session (source and, where the daemon can, bind);
    /// `None`: the first [`RouterConfig::listen`] address of the neighbor's family, or the
    /// kernel's choice.
    pub local_address: Option<IpAddr>,
}

/// RFC 4271 §10 suggests 90 s; tests that wait for a hold-timer expiry set less.
const DEFAULT_HOLD_TIME: u16 = 90;

impl Neighbor {
    /// A neighbor at `address` in `asn`: active, no password, no BFD, no graceful restart,
    /// hold time 90 s, the address's own family only.
    pub fn new(address: IpAddr, asn: u32) -> Neighbor {
        Neighbor {
            address,
            asn,
            password: None,
            bfd: None,
            passive: false,
            hold_time: DEFAULT_HOLD_TIME,
            graceful_restart: None,
            families: BTreeSet::from([Family::of(address)]),
            local_address: None,
        }
    }

    /// Sets the TCP MD5 key.
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    /// Turns BFD on.
    pub fn bfd(mut self, bfd: Bfd) -> Self {
        self.bfd = Some(bfd);
        self
    }

    /// Waits for the neighbor to connect.
    pub fn passive(mut self) -> Self {
        self.passive = true;
        self
    }

    /// Sets the hold time, in seconds.
    pub fn hold_time(mut self, seconds: u16) -> Self {
        self.hold_time = seconds;
        self
    }

    /// Turns the graceful-restart helper on, announcing `restart_time` seconds.
    pub fn graceful_restart(mut self, restart_time: u16) -> Self {
        self.graceful_restart = Some(restart_time);
        self
    }

    /// Sets the address families of the session.
    pub fn families(mut self, families: &[Family]) -> Self {
        self.families = families.iter().copied().collect();
        self
    }

    /// Sets the router's own address for this session.
    pub fn local_address(mut self, addr: IpAddr) -> Self {
        self.local_address = Some(addr);
        self
    }
}

/// A prefix the router itself originates, so that a daemon can also play an announcing node
/// (or the baseline of a benchmark). The next hop is the router's own address on each session
/// (next-hop-self); `local_pref` only travels on iBGP (RFC 4271 §5.1.5).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Announcement {
    /// The prefix.
    pub prefix: IpNet,
    /// Standard communities attached.
    pub communities: BTreeSet<Community>,
    /// Large communities attached.
    pub large_communities: BTreeSet<LargeCommunity>,
    /// LOCAL_PREF on iBGP sessions.
    pub local_pref: Option<u32>,
}

impl Announcement {
    /// `prefix` without attributes.
    pub fn new(prefix: IpNet) -> Announcement {
        Announcement {
            prefix,
            communities: BTreeSet::new(),
            large_communities: BTreeSet::new(),
            local_pref: None,
        }
    }

    /// Adds a standard community.
    pub fn community(mut self, community: Community) -> Self {
        self.communities.insert(community);
        self
    }

    /// Adds a large community.
    pub fn large_community(mut self, community: LargeCommunity) -> Self {
        self.large_communities.insert(community);
        self
    }

    /// Sets LOCAL_PREF.
    pub fn local_pref(mut self, local_pref: u32) -> Self {
        self.local_pref = Some(local_pref);
        self
    }
}

/// What the router is: its identity, its neighbors, what it does with what it learns, and what
/// it announces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// The router's ASN (4-octet, RFC 6793).
    pub asn: u32,
    /// The BGP identifier.
    pub router_id: Ipv4Addr,
    /// Addresses to accept sessions on (and to source them from); empty: every address.
    pub listen: Vec<IpAddr>,
    /// The neighbors.
    pub neighbors: Vec<Neighbor>,
    /// ECMP: keep every equal path of a prefix (different neighbors, also different
    /// neighbor ASNs) and install them all as one multipath route.
    pub multipath: bool,
    /// Install the selected routes into the namespace's kernel FIB (protocol `bird`, or
    /// `bgp` through zebra) and forward like a router: IP forwarding on, and with multipath
    /// the 5-tuple ECMP hash (see `Router::start`); off for a daemon that only announces.
    pub kernel: bool,
    /// Act on the GRACEFUL_SHUTDOWN community (RFC 8326 §4, 65535:0): a path carrying it gets
    /// LOCAL_PREF 0 on import, so the router prefers every other path (and leaves it out of
    /// ECMP) before the session drops. What RFC 8326 asks of receivers: BIRD and GoBGP only
    /// do it with a policy, which this writes into their configuration; FRR 8.4 does it by
    /// itself (so off does not turn it off there).
    pub graceful_shutdown: bool,
    /// Prefixes the router originates.
    pub announce: Vec<Announcement>,
}

impl RouterConfig {
    /// A router `asn` with identifier `router_id`, multipath, kernel install and graceful
    /// shutdown on, no neighbors yet.
    pub fn new(asn: u32, router_id: Ipv4Addr) -> RouterConfig {
        RouterConfig {
            asn,
            router_id,
            listen: Vec::new(),
            neighbors: Vec::new(),
            multipath: true,
            kernel: true,
            graceful_shutdown: true,
            announce: Vec::new(),
        }
    }

    /// Adds a listen address.
    pub fn listen(mut self, addr: IpAddr) -> Self {
        self.listen.push(addr);
        self
    }

    /// Adds a neighbor.
    pub fn neighbor(mut self, neighbor: Neighbor) -> Self {
        self.neighbors.push(neighbor);
        self
    }

    /// Turns ECMP on or off.
    pub fn multipath(mut self, on: bool) -> Self {
        self.multipath = on;
        self
    }

    /// Turns kernel installation on or off.
    pub fn kernel(mut self, on: bool) -> Self {
        self.kernel = on;
        self
    }

    /// Turns acting on GRACEFUL_SHUTDOWN on or off.
    pub fn graceful_shutdown(mut self, on: bool) -> Self {
        self.graceful_shutdown = on;
        self
    }

    /// Adds a prefix to originate.
    pub fn announce(mut self, announcement: Announcement) -> Self {
        self.announce.push(announcement);
        self
    }

    /// The router's own address for a session with `neighbor`: its
    /// [`Neighbor::local_address`], else the first listen address of its family.
    pub fn local_address_for(&self, neighbor: &Neighbor) -> Option<IpAddr> {
        neighbor.local_address.or_else(|| {
            self.listen.iter().copied().find(|a| Family::of(*a) == Family::of(neighbor.address))
        })
    }

    /// Whether any neighbor asks for BFD (FRR then also runs `bfdd`).
    pub fn wants_bfd(&self) -> bool {
        self.neighbors.iter().any(|n| n.bfd.is_some())
    }

    /// The families any neighbor negotiates.
    pub fn families(&self) -> BTreeSet<Family> {
        self.neighbors.iter().flat_map(|n| n.families.iter().copied()).collect()
    }

    /// Checks what every daemon needs: hold time 0 or ≥ 3 (RFC 4271 §4.2), no neighbor twice,
    /// passwords without quotes or line breaks (they are written into config files), at least
    /// one family per neighbor.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for n in &self.neighbors {
            if !seen.insert(n.address) {
                return Err(format!("neighbor {} is configured twice", n.address));
            }
            if n.hold_time != 0 && n.hold_time < 3 {
                return Err(format!(
                    "neighbor {}: hold time {} s (RFC 4271 §4.2: 0 or at least 3)",
                    n.address, n.hold_time
                ));
            }
            if n.families.is_empty() {
                return Err(format!("neighbor {}: no address family", n.address));
            }
            if let Some(p) = &n.password
                && (p.is_empty() || p.len() > 80 || p.chars().any(|c| c == '"' || c.is_control()))
            {
                // 80: the TCP_MD5SIG_MAXKEYLEN of Linux.
                return Err(format!(
                    "neighbor {}: a password is 1-80 characters without quotes",
                    n.address
                ));
            }
            if let Some(bfd) = n.bfd
                && (bfd.multiplier == 0 || bfd.min_rx.is_zero() || bfd.min_tx.is_zero())
            {
                return Err(format!("neighbor {}: BFD intervals and multiplier > 0", n.address));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn communities_parse_and_print() {
        const CASES: [(&str, Option<Community>); 5] = [
            ("65000:1", Some(Community(65000, 1))),
            ("0:0", Some(Community(0, 0))),
            ("65536:1", None),
            ("65000", None),
            ("a:b", None),
        ];
        for (text, want) in CASES {
            assert_eq!(text.parse::<Community>().ok(), want, "{text}");
        }
        assert_eq!(Community::from_u32(4_259_840_001), Community(65000, 1));
        assert_eq!("65000:1:2".parse::<LargeCommunity>(), Ok(LargeCommunity(65000, 1, 2)));
        assert!("1:2".parse::<LargeCommunity>().is_err());
        assert!("1:2:3:4".parse::<LargeCommunity>().is_err());
    }

    #[test]
    fn validation_names_the_bad_neighbor() {
        let ok = RouterConfig::new(64500, Ipv4Addr::new(192, 0, 2, 1))
            .neighbor(Neighbor::new("192.0.2.11".parse().unwrap(), 64501).hold_time(3));
        assert_eq!(ok.validate(), Ok(()));
        let twice = ok.clone().neighbor(Neighbor::new("192.0.2.11".parse().unwrap(), 64502));
        assert!(twice.validate().unwrap_err().contains("twice"));
        let hold = RouterConfig::new(64500, Ipv4Addr::new(192, 0, 2, 1))
            .neighbor(Neighbor::new("192.0.2.11".parse().unwrap(), 64501).hold_time(2));
        assert!(hold.validate().unwrap_err().contains("RFC 4271"));
        let quote = RouterConfig::new(64500, Ipv4Addr::new(192, 0, 2, 1))
            .neighbor(Neighbor::new("192.0.2.11".parse().unwrap(), 64501).password("a\"b"));
        assert!(quote.validate().is_err());
        let none = RouterConfig::new(64500, Ipv4Addr::new(192, 0, 2, 1))
            .neighbor(Neighbor::new("192.0.2.11".parse().unwrap(), 64501).families(&[]));
        assert!(none.validate().is_err());
    }

    #[test]
    fn local_address_falls_back_to_a_listen_address_of_the_family() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let config = RouterConfig::new(64500, Ipv4Addr::new(192, 0, 2, 1)).listen(v4).listen(v6);
        let n6 = Neighbor::new("2001:db8::11".parse().unwrap(), 64501);
        assert_eq!(config.local_address_for(&n6), Some(v6));
        let pinned = n6.clone().local_address("2001:db8::2".parse().unwrap());
        assert_eq!(config.local_address_for(&pinned), "2001:db8::2".parse().ok());
        let bare = RouterConfig::new(64500, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(bare.local_address_for(&n6), None);
    }

    proptest! {
        #[test]
        fn communities_round_trip(a: u16, b: u16, x: u32, y: u32, z: u32) {
            let c = Community(a, b);
            prop_assert_eq!(c.to_string().parse::<Community>(), Ok(c));
            prop_assert_eq!(Community::from_u32((u32::from(a) << 16) | u32::from(b)), c);
            let l = LargeCommunity(x, y, z);
            prop_assert_eq!(l.to_string().parse::<LargeCommunity>(), Ok(l));
        }
    }
}
