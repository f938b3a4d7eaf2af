//! Which interfaces the speaker listens and answers on: a pure function of the interface
//! descriptions (read from `/sys/class/net` by [`crate::link::read_interfaces`]).
//!
//! Automatic choice: every interface that is up, broadcast-capable, not loopback, not enslaved
//! to a bond or bridge (the master answers; answering on LACP members gave half the clients the
//! wrong MAC, MetalLB #316), and not matching an exclusion pattern (CNI and virtual devices).
//! Interfaces named by a class are used whether or not the automatic choice picked them, but
//! only for that class's addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use pnet_base::MacAddr;

use crate::responder::Iface;

/// Default exclusion patterns: devices created by CNIs, container runtimes and kube-proxy,
/// never the node's uplink. Each is a reason a peer answered where it should not.
pub const DEFAULT_EXCLUDE: &[&str] = &[
    "veth*",        // host side of pod veth pairs (flannel, bridge CNIs)
    "cali*",        // Calico pod interfaces
    "cilium_*",     // Cilium host/net/vxlan devices
    "lxc*",         // Cilium pod interfaces
    "flannel*",     // flannel VXLAN device
    "cni*",         // bridge CNI default `cni0`
    "docker*",      // Docker bridge
    "kube-ipvs*",   // kube-proxy IPVS dummy holding every Service IP
    "nodelocaldns", // node-local DNS dummy
    "tunl*",        // IPIP tunnels (Calico)
    "vxlan*",       // VXLAN overlays
    "genev_sys_*",  // Geneve overlays (OVN)
    "weave",        // Weave Net bridge
];

/// What the speaker knows about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Kernel name.
    pub name: String,
    /// Kernel index.
    pub index: u32,
    /// Hardware address; `None` for devices without one (tunnels).
    pub mac: Option<MacAddr>,
    /// Administratively up and operationally not down.
    pub up: bool,
    /// `IFF_BROADCAST`: ARP is meaningful there.
    pub broadcast: bool,
    /// `IFF_LOOPBACK`.
    pub loopback: bool,
    /// The bond or bridge this interface is a member of.
    pub master: Option<String>,
}

/// A name pattern where `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// A pattern from its text.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = name.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            return rest.is_empty(); // no `*`: exact match
        };
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.ends_with(last)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the automatic choice skipped an interface; logged at debug level on every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Not up.
    Down,
    /// Loopback.
    Loopback,
    /// No broadcast: ARP does not apply (point-to-point, tunnels).
    NotBroadcast,
    /// No hardware address to answer with.
    NoMac,
    /// Member of this bond or bridge.
    Enslaved(String),
    /// Matches this exclusion pattern.
    Excluded(Pattern),
}

impl SkipReason {
    /// Log/metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            SkipReason::Down => "down",
            SkipReason::Loopback => "loopback",
            SkipReason::NotBroadcast => "not_broadcast",
            SkipReason::NoMac => "no_mac",
            SkipReason::Enslaved(_) => "enslaved",
            SkipReason::Excluded(_) => "excluded",
        }
    }
}

/// Why the automatic choice would skip `info`, or `None` if it takes it.
pub fn skip_reason(info: &InterfaceInfo, exclude: &[Pattern]) -> Option<SkipReason> {
    if info.loopback {
        Some(SkipReason::Loopback)
    } else if !info.up {
        Some(SkipReason::Down)
    } else if !info.broadcast {
        Some(SkipReason::NotBroadcast)
    } else if info.mac.is_none_or(|m| m == MacAddr::zero()) {
        Some(SkipReason::NoMac)
    } else if let Some(master) = &info.master {
        Some(SkipReason::Enslaved(master.clone()))
    } else {
        exclude.iter().find(|p| p.matches(&info.name)).map(|p| SkipReason::Excluded(p.clone()))
    }
}

/// The interfaces to open, and the explicitly named ones that cannot be used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Interfaces to listen on, by name.
    pub ifaces: BTreeMap<String, Iface>,
    /// Explicitly named interfaces that do not exist.
    pub missing: BTreeSet<String>,
    /// Explicitly named interfaces that exist but are down or have no MAC; they are retried
    /// on every rescan.
    pub unusable: BTreeSet<String>,
}

/// How the interfaces a class names fare on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassInterfaces {
    /// Named interfaces that do not exist here.
    pub missing: BTreeSet<String>,
    /// Named interfaces that exist but are down or have no MAC.
    pub down: BTreeSet<String>,
    /// Named interfaces answered on.
    pub usable: BTreeSet<String>,
}

/// By class, the classes this node may announce for that name an interface it cannot use.
pub type InterfaceProblems = BTreeMap<String, ClassInterfaces>;

impl Plan {
    /// How the interfaces of each class in `classes` fare under this plan; only classes with a
    /// missing or down interface are listed (an automatic class never is).
    pub fn problems<'a>(
        &self,
        classes: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> InterfaceProblems {
        let mut out = InterfaceProblems::new();
        for (class, named) in classes {
            let mut state = ClassInterfaces::default();
            for name in named {
                if self.missing.contains(name) {
                    state.missing.insert(name.clone());
                } else if self.unusable.contains(name) {
                    state.down.insert(name.clone());
                } else if self.ifaces.contains_key(name) {
                    state.usable.insert(name.clone());
                }
            }
            if !state.missing.is_empty() || !state.down.is_empty() {
                out.insert(class.to_owned(), state);
            }
        }
        out
    }
}

/// Plans the interfaces: the automatic choice plus every name in `explicit` (class
/// interface lists).
pub fn plan(infos: &[InterfaceInfo], exclude: &[Pattern], explicit: &BTreeSet<String>) -> Plan {
    let mut out = Plan::default();
    for info in infos {
        let automatic = skip_reason(info, exclude).is_none();
        let named = explicit.contains(&info.name);
        let Some(mac) = info.mac.filter(|m| *m != MacAddr::zero()) else {
            if named {
                out.unusable.insert(info.name.clone());
            }
            continue;
        };
        if named && !info.up {
            out.unusable.insert(info.name.clone());
            continue;
        }
        if automatic || named {
            out.ifaces.insert(
                info.name.clone(),
                Iface { name: info.name.clone(), index: info.index, mac, automatic },
            );
        }
    }
    let present: BTreeSet<&String> = infos.iter().map(|i| &i.name).collect();
    out.missing = explicit.iter().filter(|name| !present.contains(name)).cloned().collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> InterfaceInfo {
        InterfaceInfo {
            name: name.into(),
            index: 2,
            mac: Some(MacAddr(0x02, 0, 0, 0, 0, 1)),
            up: true,
            broadcast: true,
            loopback: false,
            master: None,
        }
    }

    fn defaults() -> Vec<Pattern> {
        DEFAULT_EXCLUDE.iter().map(|p| Pattern::new(*p)).collect()
    }

    #[test]
    fn patterns() {
        let cases = [
            ("veth*", "veth1234", true),
            ("veth*", "eth0", false),
            ("cali*", "cali", true),
            ("*", "anything", true),
            ("eth*.100", "eth0.100", true),
            ("eth*.100", "eth0.200", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxcyyb", false),
            ("weave", "weave", true),
            ("weave", "weave0", false),
            ("*0", "eth0", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(Pattern::new(pattern).matches(name), expected, "{pattern} vs {name}");
        }
    }

    #[test]
    fn skip_reasons() {
        let down = InterfaceInfo { up: false, ..info("eth1") };
        let lo = InterfaceInfo { loopback: true, broadcast: false, ..info("lo") };
        let ptp = InterfaceInfo { broadcast: false, ..info("wg0") };
        let tunnel = InterfaceInfo { mac: None, ..info("gre0") };
        let member = InterfaceInfo { master: Some("bond0".into()), ..info("eth2") };
        let cases = [
            (info("eth0"), None),
            (info("bond0"), None),
            (info("br0"), None),
            (down, Some("down")),
            (lo, Some("loopback")),
            (ptp, Some("not_broadcast")),
            (tunnel, Some("no_mac")),
            (member, Some("enslaved")),
            (info("cali12345"), Some("excluded")),
            (info("kube-ipvs0"), Some("excluded")),
            (info("cilium_host"), Some("excluded")),
        ];
        for (i, expected) in cases {
            assert_eq!(skip_reason(&i, &defaults()).map(|r| r.label()), expected, "{}", i.name);
        }
    }

    #[test]
    fn plan_combines_automatic_and_explicit() {
        let infos = vec![
            info("eth0"),
            InterfaceInfo { index: 3, ..info("veth9") },
            InterfaceInfo { index: 4, up: false, ..info("eth3") },
        ];
        let explicit = BTreeSet::from(["veth9".to_string(), "eth3".into(), "eth9".into()]);
        let plan = plan(&infos, &defaults(), &explicit);
        assert_eq!(plan.ifaces.keys().collect::<Vec<_>>(), ["eth0", "veth9"]);
        assert!(plan.ifaces["eth0"].automatic);
        assert!(!plan.ifaces["veth9"].automatic, "named but excluded: only for its class");
        assert_eq!(plan.missing, BTreeSet::from(["eth9".to_string()]));
        assert_eq!(plan.unusable, BTreeSet::from(["eth3".to_string()]));

        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (front, back, fine) =
            (names(&["eth9", "eth3", "veth9"]), names(&["eth3"]), names(&["veth9"]));
        let problems = plan.problems([
            ("front", front.as_slice()),
            ("back", back.as_slice()),
            ("fine", fine.as_slice()),
            ("auto", &[][..]),
        ]);
        let set = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(problems.keys().collect::<Vec<_>>(), ["back", "front"], "only troubled classes");
        assert_eq!(
            problems["front"],
            ClassInterfaces {
                missing: set(&["eth9"]),
                down: set(&["eth3"]),
                usable: set(&["veth9"])
            }
        );
        assert_eq!(
            problems["back"],
            ClassInterfaces { missing: set(&[]), down: set(&["eth3"]), usable: set(&[]) }
        );
    }
}
