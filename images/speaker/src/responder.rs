//! The pure answer decision: one received frame, the set of owned addresses and the receiving
//! interface in, either the reply to send or the reason not to.
//!
//! ```text
//!  frame ──parse──► ARP request / neighbour solicitation ──validate──► lookup (O(1)) ──► Reply
//!                         │                                    │              │
//!                         └── DropReason::NotRequest           └── …          └── NotOurs /
//!                                                                                 InterfaceNotAllowed
//! ```
//!
//! Every refusal is a [`DropReason`] with a metrics label, so an operator sees *why* a request
//! went unanswered (the top complaint against every peer, `reference/l2-peers.md` §2).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_base::MacAddr;

use crate::packet::{self, Frame, Icmpv6Message};

/// ARP operation code of a request (RFC 826).
const ARP_REQUEST: u16 = 1;

/// The interface a frame arrived on, as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Iface {
    /// Kernel name, e.g. `eth0`.
    pub name: String,
    /// Kernel interface index.
    pub index: u32,
    /// The interface's own MAC: replies carry it, never another interface's (MetalLB #597, #894).
    pub mac: MacAddr,
    /// Whether the automatic selection chose this interface; addresses without an explicit
    /// interface list are answered only on such interfaces.
    pub automatic: bool,
}

/// Where an owned address may be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// On every automatically selected interface (the class names no interfaces).
    Automatic,
    /// Only on these interfaces (the class's `l2.interfaces`).
    Only(BTreeSet<String>),
}

impl Scope {
    /// Whether an address with this scope is answered on `iface`.
    pub fn allows(&self, iface: &Iface) -> bool {
        match self {
            Scope::Automatic => iface.automatic,
            Scope::Only(names) => names.contains(&iface.name),
        }
    }
}

/// The addresses this node answers for, with where. Hash maps keyed by address keep the lookup
/// constant-time however many addresses the node owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedSet {
    v4: HashMap<Ipv4Addr, Scope>,
    v6: HashMap<Ipv6Addr, Scope>,
}

impl OwnedSet {
    /// Builds the set; a later duplicate address replaces an earlier one.
    pub fn new(entries: impl IntoIterator<Item = (IpAddr, Scope)>) -> Self {
        let mut set = Self::default();
        for (ip, scope) in entries {
            match ip {
                IpAddr::V4(v4) => set.v4.insert(v4, scope),
                IpAddr::V6(v6) => set.v6.insert(v6, scope),
            };
        }
        set
    }

    /// The scope of `ip`, if owned.
    pub fn get(&self, ip: IpAddr) -> Option<&Scope> {
        match ip {
            IpAddr::V4(v4) => self.v4.get(&v4),
            IpAddr::V6(v6) => self.v6.get(&v6),
        }
    }

    /// Number of owned IPv4 addresses.
    pub fn len_v4(&self) -> usize {
        self.v4.len()
    }

    /// Number of owned IPv6 addresses.
    pub fn len_v6(&self) -> usize {
        self.v6.len()
    }

    /// Every owned address with its scope, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, &Scope)> {
        let v4 = self.v4.iter().map(|(ip, s)| (IpAddr::V4(*ip), s));
        let v6 = self.v6.iter().map(|(ip, s)| (IpAddr::V6(*ip), s));
        v4.chain(v6)
    }

    /// The owned addresses answered on `iface`, sorted.
    pub fn allowed_on(&self, iface: &Iface) -> BTreeSet<IpAddr> {
        self.iter().filter(|(_, scope)| scope.allows(iface)).map(|(ip, _)| ip).collect()
    }
}

/// A reply to send back out of the receiving interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// ARP reply, unicast to the requester.
    Arp {
        /// The owned address.
        ip: Ipv4Addr,
        /// The receiving interface's MAC.
        mac: MacAddr,
        /// Requester's hardware address (ARP SHA).
        to_mac: MacAddr,
        /// Requester's protocol address (ARP SPA).
        to_ip: Ipv4Addr,
    },
    /// Solicited neighbour advertisement, unicast to the soliciting node.
    Advert {
        /// The owned address.
        target: Ipv6Addr,
        /// The receiving interface's MAC.
        mac: MacAddr,
        /// Soliciting node's MAC: its source link-layer option, else the frame's source.
        to_mac: MacAddr,
        /// Soliciting node's address.
        to_ip: Ipv6Addr,
    },
}

impl Reply {
    /// The frame to send.
    pub fn to_bytes(&self) -> Vec<u8> {
        match *self {
            Reply::Arp { ip, mac, to_mac, to_ip } => {
                packet::arp_reply(mac, ip, to_mac, to_ip).to_vec()
            }
            Reply::Advert { target, mac, to_mac, to_ip } => {
                packet::solicited_advert(mac, target, to_mac, to_ip).to_vec()
            }
        }
    }

    /// The address family answered, for metrics.
    pub fn family(&self) -> Family {
        match self {
            Reply::Arp { .. } => Family::Ipv4,
            Reply::Advert { .. } => Family::Ipv6,
        }
    }
}

/// Address family, a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4 (ARP).
    Ipv4,
    /// IPv6 (NDP).
    Ipv6,
}

impl Family {
    /// Family of an address.
    pub fn of(ip: IpAddr) -> Self {
        if ip.is_ipv4() { Family::Ipv4 } else { Family::Ipv6 }
    }

    /// Metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

/// Why a frame was not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// The frame could not be parsed (truncated, foreign ARP hardware type, bad ND option).
    Malformed,
    /// Not an ARP request nor a neighbour solicitation (replies, advertisements, other traffic).
    NotRequest,
    /// The frame was sent from this interface's own MAC: our own transmission looped back by
    /// the packet socket (it sees outgoing frames too), e.g. our gratuitous ARP request.
    Looped,
    /// Unicast to another host's MAC (seen in promiscuous mode), or a solicitation whose IPv6
    /// destination is neither the target nor its solicited-node group (RFC 4861 §7.1.1).
    WrongDestination,
    /// Solicitation with a hop limit other than 255 or a code other than 0 (RFC 4861 §7.1.1).
    InvalidNeighbourDiscovery,
    /// Solicitation whose ICMPv6 checksum does not verify.
    BadChecksum,
    /// Another host's gratuitous ARP (sender IP = target IP): an announcement, not a question.
    Gratuitous,
    /// Duplicate address detection: an ARP probe (sender IP 0.0.0.0, RFC 5227) or a
    /// solicitation from `::` (RFC 4862 §5.4). Another host is about to configure the address;
    /// the speaker does not fight it, the counter makes the conflict visible.
    DadProbe,
    /// The target address is not owned by this node.
    NotOurs,
    /// The address is owned, but not to be answered on the receiving interface.
    InterfaceNotAllowed,
}

impl DropReason {
    /// Every reason, for tests and for pre-registering metrics.
    pub const ALL: [DropReason; 10] = [
        DropReason::Malformed,
        DropReason::NotRequest,
        DropReason::Looped,
        DropReason::WrongDestination,
        DropReason::InvalidNeighbourDiscovery,
        DropReason::BadChecksum,
        DropReason::Gratuitous,
        DropReason::DadProbe,
        DropReason::NotOurs,
        DropReason::InterfaceNotAllowed,
    ];

    /// Metrics label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NotRequest => "not_request",
            DropReason::Looped => "looped",
            DropReason::WrongDestination => "wrong_destination",
            DropReason::InvalidNeighbourDiscovery => "invalid_nd",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::Gratuitous => "gratuitous",
            DropReason::DadProbe => "dad_probe",
            DropReason::NotOurs => "not_ours",
            DropReason::InterfaceNotAllowed => "interface_not_allowed",
        }
    }
}

/// A frame that is an ARP request or a neighbour solicitation, whatever its fate: what the
/// `requests_received` metric counts.
pub fn is_request(frame: &[u8]) -> Option<Family> {
    match packet::parse(frame) {
        Ok(Frame::Arp(arp)) if arp.operation == ARP_REQUEST => Some(Family::Ipv4),
        Ok(Frame::Icmpv6(icmp)) if matches!(icmp.message, Icmpv6Message::Solicitation { .. }) => {
            Some(Family::Ipv6)
        }
        _ => None,
    }
}

/// Decides whether and how to answer `frame`, received on `iface`.
pub fn decide(frame: &[u8], owned: &OwnedSet, iface: &Iface) -> Result<Reply, DropReason> {
    let parsed = packet::parse(frame).map_err(|_| DropReason::Malformed)?;
    match parsed {
        Frame::Arp(arp) => {
            if arp.operation != ARP_REQUEST {
                return Err(DropReason::NotRequest);
            }
            check_ethernet(arp.eth, iface)?;
            if arp.sender_ip == arp.target_ip {
                return Err(DropReason::Gratuitous);
            }
            if arp.sender_ip.is_unspecified() {
                return Err(DropReason::DadProbe);
            }
            lookup(owned, IpAddr::V4(arp.target_ip), iface)?;
            Ok(Reply::Arp {
                ip: arp.target_ip,
                mac: iface.mac,
                to_mac: arp.sender_mac,
                to_ip: arp.sender_ip,
            })
        }
        Frame::Icmpv6(icmp) => {
            let Icmpv6Message::Solicitation { target, source_mac } = icmp.message else {
                return Err(DropReason::NotRequest);
            };
            check_ethernet(icmp.eth, iface)?;
            if icmp.hop_limit != packet::ND_HOP_LIMIT || icmp.code != 0 || target.is_multicast() {
                return Err(DropReason::InvalidNeighbourDiscovery);
            }
            if !icmp.checksum_ok {
                return Err(DropReason::BadChecksum);
            }
            // Multicast resolution goes to the solicited-node group; unicast reachability
            // probes (NUD) go to the target itself and must be answered too (MetalLB #2920).
            if icmp.dst != packet::solicited_node(target) && icmp.dst != target {
                return Err(DropReason::WrongDestination);
            }
            if icmp.src.is_unspecified() {
                return Err(DropReason::DadProbe);
            }
            lookup(owned, IpAddr::V6(target), iface)?;
            Ok(Reply::Advert {
                target,
                mac: iface.mac,
                to_mac: source_mac.unwrap_or(icmp.eth.src),
                to_ip: icmp.src,
            })
        }
        Frame::Other { .. } => Err(DropReason::NotRequest),
    }
}

/// Frames from our own MAC are our transmissions; unicast frames for another MAC reach us only
/// in promiscuous mode and belong to whoever owns that MAC (e.g. a client's unicast probe to
/// the previous owner, which must not be answered by us).
fn check_ethernet(eth: packet::Ethernet, iface: &Iface) -> Result<(), DropReason> {
    if eth.src == iface.mac {
        return Err(DropReason::Looped);
    }
    // The group bit (lowest bit of the first octet) marks broadcast and multicast.
    let group = eth.dst.0 & 1 == 1;
    if !group && eth.dst != iface.mac {
        return Err(DropReason::WrongDestination);
    }
    Ok(())
}

fn lookup(owned: &OwnedSet, ip: IpAddr, iface: &Iface) -> Result<(), DropReason> {
    match owned.get(ip) {
        None => Err(DropReason::NotOurs),
        Some(scope) if scope.allows(iface) => Ok(()),
        Some(_) => Err(DropReason::InterfaceNotAllowed),
    }
}

#[cfg(test)]
mod tests;
