//! Pure parsing and building of the frames the speaker reads and writes: Ethernet + ARP and
//! Ethernet + IPv6 + ICMPv6 neighbour discovery (RFC 826, RFC 5227, RFC 4861).
//!
//! Nothing here touches a socket or a clock. Parsing never panics, whatever the bytes: every
//! length is checked before a field is read (a property test in this module feeds arbitrary
//! bytes). Building writes into buffers whose size is a constant of this module, so the header
//! views over them always exist.

use std::net::{Ipv4Addr, Ipv6Addr};

use pnet_base::MacAddr;
use pnet_packet::Packet;
use pnet_packet::arp::{
    ArpHardwareTypes, ArpOperation, ArpOperations, ArpPacket, MutableArpPacket,
};
use pnet_packet::ethernet::{EtherType, EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{
    MutableNeighborAdvertPacket, MutableNeighborSolicitPacket, NeighborAdvertFlags,
    NeighborAdvertPacket, NeighborSolicitPacket,
};
use pnet_packet::icmpv6::{Icmpv6Code, Icmpv6Packet, Icmpv6Types, MutableIcmpv6Packet};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::{Ipv6Packet, MutableIpv6Packet};

/// Ethernet II header: destination, source, ethertype.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// ARP body for Ethernet/IPv4: 8 bytes of fixed fields, two 6-byte MACs, two 4-byte IPs.
pub const ARP_LEN: usize = 28;
/// A whole ARP frame as the speaker sends it (no padding: the NIC pads to 60 bytes).
pub const ARP_FRAME_LEN: usize = ETHERNET_HEADER_LEN + ARP_LEN;
/// Fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;
/// Neighbour solicitation/advertisement body without options: type, code, checksum,
/// 4 bytes of flags/reserved, 16-byte target (RFC 4861 §4.3, §4.4).
pub const ND_LEN: usize = 24;
/// A source/target link-layer address option for Ethernet: type, length in units of 8 octets
/// (= 1), 6-byte MAC (RFC 4861 §4.6.1).
pub const LLA_OPTION_LEN: usize = 8;
/// A neighbour advertisement or solicitation frame carrying one link-layer address option.
pub const ND_FRAME_LEN: usize = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + ND_LEN + LLA_OPTION_LEN;
/// RFC 4861 §7.1: a receiver must drop ND messages whose hop limit is not 255, which proves
/// they were not forwarded by a router; senders therefore always use 255.
pub const ND_HOP_LIMIT: u8 = 255;
/// RFC 4861 §4.6.1 option type of the source link-layer address.
const OPTION_SOURCE_LLA: u8 = 1;
/// RFC 4861 §4.6.1 option type of the target link-layer address.
const OPTION_TARGET_LLA: u8 = 2;
/// ARP `hlen` for Ethernet MAC addresses.
const ARP_HLEN_ETHERNET: u8 = 6;
/// ARP `plen` for IPv4 addresses.
const ARP_PLEN_IPV4: u8 = 4;

/// The Ethernet broadcast address, destination of gratuitous ARP.
pub const BROADCAST: MacAddr = MacAddr(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
/// The all-nodes link-local multicast group, destination of unsolicited advertisements
/// (RFC 4861 §7.2.6).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Why a frame could not be parsed. The decision layer counts all of them as `malformed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The frame ended before the named header was complete.
    #[error("frame too short for the {0} header")]
    Truncated(&'static str),
    /// An ARP packet for another hardware or protocol type than Ethernet/IPv4.
    #[error(
        "arp packet is not ethernet/ipv4 (htype {htype}, ptype {ptype:#06x}, hlen {hlen}, plen {plen})"
    )]
    UnsupportedArp {
        /// Hardware type field.
        htype: u16,
        /// Protocol type field.
        ptype: u16,
        /// Hardware address length field.
        hlen: u8,
        /// Protocol address length field.
        plen: u8,
    },
    /// The IPv6 header is not version 6 or declares more payload than the frame holds.
    #[error("ipv6 header is inconsistent with the frame")]
    BadIpv6Header,
    /// A neighbour discovery option with length 0 or running past the message
    /// (RFC 4861 §4.6: such a message must be discarded).
    #[error("neighbour discovery option has an invalid length")]
    BadOption,
}

/// Source and destination of an Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ethernet {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
}

/// A parsed frame, reduced to what the speaker acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An Ethernet/IPv4 ARP packet.
    Arp(Arp),
    /// An ICMPv6 message (neighbour discovery or not).
    Icmpv6(Icmpv6),
    /// Any other ethertype or IPv6 next header: nothing the speaker answers.
    Other {
        /// Ethernet header.
        eth: Ethernet,
    },
}

/// The fields of an ARP packet (RFC 826).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// Ethernet header.
    pub eth: Ethernet,
    /// Operation (1 request, 2 reply, anything else is carried through).
    pub operation: u16,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

/// The fields of an ICMPv6 message carried directly after the IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6 {
    /// Ethernet header.
    pub eth: Ethernet,
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// IPv6 hop limit.
    pub hop_limit: u8,
    /// ICMPv6 code.
    pub code: u8,
    /// Whether the ICMPv6 checksum over the pseudo-header verifies.
    pub checksum_ok: bool,
    /// The message itself.
    pub message: Icmpv6Message,
}

/// The ICMPv6 messages the speaker distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Message {
    /// Neighbour solicitation (type 135).
    Solicitation {
        /// The address being resolved.
        target: Ipv6Addr,
        /// The source link-layer address option, when present.
        source_mac: Option<MacAddr>,
    },
    /// Neighbour advertisement (type 136).
    Advertisement {
        /// R, S and O flags (the top three bits, as in [`NeighborAdvertFlags`]).
        flags: u8,
        /// The address being advertised.
        target: Ipv6Addr,
        /// The target link-layer address option, when present.
        target_mac: Option<MacAddr>,
    },
    /// Any other ICMPv6 type, or a neighbour discovery message too short for its body.
    Other {
        /// ICMPv6 type.
        icmp_type: u8,
    },
}

/// Parses one Ethernet frame. Never panics; see the module docs.
pub fn parse(frame: &[u8]) -> Result<Frame, ParseError> {
    let eth_view = EthernetPacket::new(frame).ok_or(ParseError::Truncated("ethernet"))?;
    let eth = Ethernet { dst: eth_view.get_destination(), src: eth_view.get_source() };
    match eth_view.get_ethertype() {
        EtherTypes::Arp => parse_arp(eth, eth_view.payload()).map(Frame::Arp),
        EtherTypes::Ipv6 => parse_ipv6(eth, eth_view.payload()),
        _ => Ok(Frame::Other { eth }),
    }
}

fn parse_arp(eth: Ethernet, body: &[u8]) -> Result<Arp, ParseError> {
    let arp = ArpPacket::new(body).ok_or(ParseError::Truncated("arp"))?;
    // pnet's view assumes Ethernet/IPv4 sizes; check them so a packet for another hardware type
    // (e.g. IPoIB, 20-byte addresses) is never misread.
    let (htype, ptype) = (arp.get_hardware_type(), arp.get_protocol_type());
    let (hlen, plen) = (arp.get_hw_addr_len(), arp.get_proto_addr_len());
    if htype != ArpHardwareTypes::Ethernet
        || ptype != EtherTypes::Ipv4
        || hlen != ARP_HLEN_ETHERNET
        || plen != ARP_PLEN_IPV4
    {
        return Err(ParseError::UnsupportedArp { htype: htype.0, ptype: ptype.0, hlen, plen });
    }
    Ok(Arp {
        eth,
        operation: arp.get_operation().0,
        sender_mac: arp.get_sender_hw_addr(),
        sender_ip: arp.get_sender_proto_addr(),
        target_mac: arp.get_target_hw_addr(),
        target_ip: arp.get_target_proto_addr(),
    })
}

fn parse_ipv6(eth: Ethernet, body: &[u8]) -> Result<Frame, ParseError> {
    let ip = Ipv6Packet::new(body).ok_or(ParseError::Truncated("ipv6"))?;
    let declared = usize::from(ip.get_payload_length());
    // The frame may carry Ethernet padding after the payload, never less than declared.
    if ip.get_version() != 6 || body.len() - IPV6_HEADER_LEN < declared {
        return Err(ParseError::BadIpv6Header);
    }
    if ip.get_next_header() != IpNextHeaderProtocols::Icmpv6 {
        // Neighbour discovery never travels behind extension headers in practice, and the
        // socket filter in `link` passes only next header 58; anything else is not ours to read.
        return Ok(Frame::Other { eth });
    }
    let payload = &body[IPV6_HEADER_LEN..IPV6_HEADER_LEN + declared];
    let icmp = Icmpv6Packet::new(payload).ok_or(ParseError::Truncated("icmpv6"))?;
    let (src, dst) = (ip.get_source(), ip.get_destination());
    let checksum_ok = pnet_packet::icmpv6::checksum(&icmp, &src, &dst) == icmp.get_checksum();
    let message = match icmp.get_icmpv6_type() {
        Icmpv6Types::NeighborSolicit => match NeighborSolicitPacket::new(payload) {
            Some(ns) => Icmpv6Message::Solicitation {
                target: ns.get_target_addr(),
                source_mac: find_lla(&payload[ND_LEN..], OPTION_SOURCE_LLA)?,
            },
            None => Icmpv6Message::Other { icmp_type: Icmpv6Types::NeighborSolicit.0 },
        },
        Icmpv6Types::NeighborAdvert => match NeighborAdvertPacket::new(payload) {
            Some(na) => Icmpv6Message::Advertisement {
                flags: na.get_flags(),
                target: na.get_target_addr(),
                target_mac: find_lla(&payload[ND_LEN..], OPTION_TARGET_LLA)?,
            },
            None => Icmpv6Message::Other { icmp_type: Icmpv6Types::NeighborAdvert.0 },
        },
        other => Icmpv6Message::Other { icmp_type: other.0 },
    };
    Ok(Frame::Icmpv6(Icmpv6 {
        eth,
        src,
        dst,
        hop_limit: ip.get_hop_limit(),
        code: icmp.get_icmpv6_code().0,
        checksum_ok,
        message,
    }))
}

/// Walks the TLV options by hand rather than through pnet's option iterator so that a zero
/// length or an option running past the end is rejected as RFC 4861 §4.6 demands.
fn find_lla(mut options: &[u8], wanted: u8) -> Result<Option<MacAddr>, ParseError> {
    let mut found = None;
    while !options.is_empty() {
        let [kind, units, ..] = *options else {
            return Err(ParseError::BadOption);
        };
        let len = usize::from(units) * 8;
        if len == 0 || len > options.len() {
            return Err(ParseError::BadOption);
        }
        if kind == wanted
            && found.is_none()
            && let [_, _, a, b, c, d, e, f, ..] = options[..len]
        {
            found = Some(MacAddr(a, b, c, d, e, f));
        }
        options = &options[len..];
    }
    Ok(found)
}

// === building ===

/// The fields of an ARP frame to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpFields {
    /// Ethernet destination.
    pub eth_dst: MacAddr,
    /// Ethernet source; always the MAC of the interface the frame leaves on.
    pub eth_src: MacAddr,
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

/// Builds an Ethernet/IPv4 ARP frame.
pub fn build_arp(fields: &ArpFields) -> [u8; ARP_FRAME_LEN] {
    let mut buf = [0u8; ARP_FRAME_LEN];
    write_ethernet(&mut buf, fields.eth_dst, fields.eth_src, EtherTypes::Arp);
    let mut arp = MutableArpPacket::new(&mut buf[ETHERNET_HEADER_LEN..])
        .expect("buffer is ARP_FRAME_LEN long, enough for the ARP view");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(ARP_HLEN_ETHERNET);
    arp.set_proto_addr_len(ARP_PLEN_IPV4);
    arp.set_operation(fields.operation);
    arp.set_sender_hw_addr(fields.sender_mac);
    arp.set_sender_proto_addr(fields.sender_ip);
    arp.set_target_hw_addr(fields.target_mac);
    arp.set_target_proto_addr(fields.target_ip);
    buf
}

/// An ARP reply from `mac`/`ip` to the requester, sent unicast to the requester's MAC.
pub fn arp_reply(
    mac: MacAddr,
    ip: Ipv4Addr,
    requester_mac: MacAddr,
    requester_ip: Ipv4Addr,
) -> [u8; ARP_FRAME_LEN] {
    build_arp(&ArpFields {
        eth_dst: requester_mac,
        eth_src: mac,
        operation: ArpOperations::Reply,
        sender_mac: mac,
        sender_ip: ip,
        target_mac: requester_mac,
        target_ip: requester_ip,
    })
}

/// Gratuitous ARP, request form (RFC 5227 §3 "ARP Announcement"): broadcast, SPA = TPA = ip,
/// THA zero. Linux treats it as gratuitous and lets it override an existing entry.
pub fn garp_request(mac: MacAddr, ip: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
    build_arp(&ArpFields {
        eth_dst: BROADCAST,
        eth_src: mac,
        operation: ArpOperations::Request,
        sender_mac: mac,
        sender_ip: ip,
        target_mac: MacAddr::zero(),
        target_ip: ip,
    })
}

/// Gratuitous ARP, reply form: broadcast, SPA = TPA = ip and THA = SHA. Linux only treats a
/// reply as gratuitous when THA equals SHA (`arp_process`, see `reference/l2-peers.md` §4.3);
/// MetalLB's THA = broadcast variant is not gratuitous there. Some routers only learn from the
/// reply form, hence both.
pub fn garp_reply(mac: MacAddr, ip: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
    build_arp(&ArpFields {
        eth_dst: BROADCAST,
        eth_src: mac,
        operation: ArpOperations::Reply,
        sender_mac: mac,
        sender_ip: ip,
        target_mac: mac,
        target_ip: ip,
    })
}

/// An ARP request (what a client sends to resolve `target_ip`); used by tests and tools.
pub fn arp_request(mac: MacAddr, ip: Ipv4Addr, target_ip: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
    build_arp(&ArpFields {
        eth_dst: BROADCAST,
        eth_src: mac,
        operation: ArpOperations::Request,
        sender_mac: mac,
        sender_ip: ip,
        target_mac: MacAddr::zero(),
        target_ip,
    })
}

/// The solicited-node multicast address of `addr`: `ff02::1:ff` + its low 24 bits
/// (RFC 4291 §2.7.1). Solicitations for `addr` are sent there.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet address of an IPv6 multicast group: `33:33` + its low 32 bits (RFC 2464 §7).
pub fn multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr(0x33, 0x33, o[12], o[13], o[14], o[15])
}

/// The fields of a neighbour advertisement to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertFields {
    /// Ethernet destination.
    pub eth_dst: MacAddr,
    /// Ethernet source and the target link-layer address option: the interface's MAC.
    pub mac: MacAddr,
    /// IPv6 source: the advertised address itself.
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// The advertised address.
    pub target: Ipv6Addr,
    /// R, S, O flags ([`NeighborAdvertFlags`]).
    pub flags: u8,
}

/// Builds a neighbour advertisement with the target link-layer address option, hop limit 255
/// and a valid checksum.
pub fn build_advert(fields: &AdvertFields) -> [u8; ND_FRAME_LEN] {
    let mut buf = [0u8; ND_FRAME_LEN];
    write_ethernet(&mut buf, fields.eth_dst, fields.mac, EtherTypes::Ipv6);
    write_ipv6(&mut buf, fields.src, fields.dst, ND_LEN + LLA_OPTION_LEN);
    {
        let mut na = MutableNeighborAdvertPacket::new(&mut buf[ND_BODY..])
            .expect("buffer is ND_FRAME_LEN long, enough for the advertisement view");
        na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
        na.set_icmpv6_code(Icmpv6Code(0));
        na.set_flags(fields.flags);
        na.set_target_addr(fields.target);
    }
    write_lla_option(&mut buf, OPTION_TARGET_LLA, fields.mac);
    write_icmpv6_checksum(&mut buf, fields.src, fields.dst);
    buf
}

/// A solicited advertisement answering a solicitation: S and O set, R clear (the speaker is
/// not a router). O is set because the speaker is the owner: without it Linux does not replace
/// a cached entry (RFC 4861 §7.2.5).
pub fn solicited_advert(
    mac: MacAddr,
    target: Ipv6Addr,
    requester_mac: MacAddr,
    requester_ip: Ipv6Addr,
) -> [u8; ND_FRAME_LEN] {
    build_advert(&AdvertFields {
        eth_dst: requester_mac,
        mac,
        src: target,
        dst: requester_ip,
        target,
        flags: NeighborAdvertFlags::Solicited | NeighborAdvertFlags::Override,
    })
}

/// An unsolicited advertisement (RFC 4861 §7.2.6) to all nodes: O set so receivers replace
/// their cached MAC, S clear, with the target link-layer address option (Cilium shipped these
/// without O and with the wrong option, and receivers ignored them: `l2-peers.md` §0.7).
pub fn unsolicited_advert(mac: MacAddr, target: Ipv6Addr) -> [u8; ND_FRAME_LEN] {
    build_advert(&AdvertFields {
        eth_dst: multicast_mac(ALL_NODES),
        mac,
        src: target,
        dst: ALL_NODES,
        target,
        flags: NeighborAdvertFlags::Override,
    })
}

/// Builds a neighbour solicitation for `target`, with the source link-layer address option
/// unless `src` is unspecified (a DAD probe must not carry it, RFC 4861 §7.2.2). Used by tests
/// and tools; the speaker itself never solicits.
pub fn solicitation(
    mac: MacAddr,
    eth_dst: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
) -> Vec<u8> {
    let with_option = !src.is_unspecified();
    let icmp_len = ND_LEN + if with_option { LLA_OPTION_LEN } else { 0 };
    let mut buf = vec![0u8; ND_BODY + icmp_len];
    write_ethernet(&mut buf, eth_dst, mac, EtherTypes::Ipv6);
    write_ipv6(&mut buf, src, dst, icmp_len);
    {
        let mut ns = MutableNeighborSolicitPacket::new(&mut buf[ND_BODY..])
            .expect("buffer is at least ND_BODY + ND_LEN long");
        ns.set_icmpv6_type(Icmpv6Types::NeighborSolicit);
        ns.set_icmpv6_code(Icmpv6Code(0));
        ns.set_target_addr(target);
    }
    if with_option {
        write_lla_option(&mut buf, OPTION_SOURCE_LLA, mac);
    }
    write_icmpv6_checksum(&mut buf, src, dst);
    buf
}

/// Offset of the ICMPv6 body in an Ethernet + IPv6 frame.
const ND_BODY: usize = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN;

fn write_ethernet(buf: &mut [u8], dst: MacAddr, src: MacAddr, ethertype: EtherType) {
    let mut eth =
        MutableEthernetPacket::new(buf).expect("every built frame has an ethernet header");
    eth.set_destination(dst);
    eth.set_source(src);
    eth.set_ethertype(ethertype);
}

fn write_ipv6(buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, payload_len: usize) {
    let mut ip = MutableIpv6Packet::new(&mut buf[ETHERNET_HEADER_LEN..])
        .expect("every built ND frame has an ipv6 header");
    ip.set_version(6);
    ip.set_payload_length(u16::try_from(payload_len).unwrap_or(u16::MAX));
    ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
    ip.set_hop_limit(ND_HOP_LIMIT);
    ip.set_source(src);
    ip.set_destination(dst);
}

fn write_lla_option(buf: &mut [u8], kind: u8, mac: MacAddr) {
    let at = ND_BODY + ND_LEN;
    buf[at..at + LLA_OPTION_LEN]
        .copy_from_slice(&[kind, 1, mac.0, mac.1, mac.2, mac.3, mac.4, mac.5]);
}

fn write_icmpv6_checksum(buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) {
    let body = &mut buf[ND_BODY..];
    let sum = pnet_packet::icmpv6::checksum(
        &Icmpv6Packet::new(body).expect("every built ND frame has an icmpv6 header"),
        &src,
        &dst,
    );
    MutableIcmpv6Packet::new(body)
        .expect("every built ND frame has an icmpv6 header")
        .set_checksum(sum);
}

#[cfg(test)]
mod tests;
