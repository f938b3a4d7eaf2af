use std::collections::BTreeSet;

use pnet_packet::arp::ArpOperations;

use super::*;
use crate::packet::{ArpFields, BROADCAST, ETHERNET_HEADER_LEN, multicast_mac, solicited_node};

const SPEAKER: MacAddr = MacAddr(0x02, 0, 0, 0, 0, 0x0a);
const OTHER_HOST: MacAddr = MacAddr(0x02, 0, 0, 0, 0, 0x0b);
const CLIENT: MacAddr = MacAddr(0x02, 0, 0, 0, 0, 0x01);
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const SIDE4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);
const FOREIGN4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
const FOREIGN6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

fn eth0() -> Iface {
    Iface { name: "eth0".into(), index: 2, mac: SPEAKER, automatic: true }
}

fn owned() -> OwnedSet {
    OwnedSet::new([
        (IpAddr::V4(VIP4), Scope::Automatic),
        (IpAddr::V6(VIP6), Scope::Automatic),
        (IpAddr::V4(SIDE4), Scope::Only(BTreeSet::from(["eth1".to_string()]))),
    ])
}

fn request(target: Ipv4Addr) -> Vec<u8> {
    packet::arp_request(CLIENT, CLIENT4, target).to_vec()
}

fn ns(target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    packet::solicitation(CLIENT, multicast_mac(group), CLIENT6, group, target)
}

fn with_byte(mut frame: Vec<u8>, at: usize, value: u8) -> Vec<u8> {
    frame[at] = value;
    frame
}

/// Offset of the IPv6 hop limit in an Ethernet frame.
const HOP_LIMIT_AT: usize = ETHERNET_HEADER_LEN + 7;
/// Offset of the ICMPv6 code.
const ICMP_CODE_AT: usize = ETHERNET_HEADER_LEN + 40 + 1;

fn cases() -> Vec<(&'static str, Vec<u8>, Result<Reply, DropReason>)> {
    let arp_reply_v4 = Reply::Arp { ip: VIP4, mac: SPEAKER, to_mac: CLIENT, to_ip: CLIENT4 };
    let advert_v6 = Reply::Advert { target: VIP6, mac: SPEAKER, to_mac: CLIENT, to_ip: CLIENT6 };
    vec![
        ("broadcast arp request for an owned ip", request(VIP4), Ok(arp_reply_v4)),
        (
            "unicast arp reachability probe",
            packet::build_arp(&ArpFields {
                eth_dst: SPEAKER,
                eth_src: CLIENT,
                operation: ArpOperations::Request,
                sender_mac: CLIENT,
                sender_ip: CLIENT4,
                target_mac: SPEAKER,
                target_ip: VIP4,
            })
            .to_vec(),
            Ok(arp_reply_v4),
        ),
        ("solicitation to the solicited-node group", ns(VIP6), Ok(advert_v6)),
        (
            "unicast neighbour unreachability probe (MetalLB #2920)",
            packet::solicitation(CLIENT, SPEAKER, CLIENT6, VIP6, VIP6),
            Ok(advert_v6),
        ),
        ("truncated frame", request(VIP4)[..20].to_vec(), Err(DropReason::Malformed)),
        (
            "arp reply",
            packet::arp_reply(CLIENT, CLIENT4, SPEAKER, VIP4).to_vec(),
            Err(DropReason::NotRequest),
        ),
        (
            "neighbour advertisement",
            packet::unsolicited_advert(CLIENT, CLIENT6).to_vec(),
            Err(DropReason::NotRequest),
        ),
        (
            "other ethertype",
            with_byte(with_byte(request(VIP4), 12, 0x08), 13, 0x00),
            Err(DropReason::NotRequest),
        ),
        (
            "our own gratuitous request looped back",
            packet::garp_request(SPEAKER, VIP4).to_vec(),
            Err(DropReason::Looped),
        ),
        (
            "unicast request for another host's mac",
            packet::build_arp(&ArpFields {
                eth_dst: OTHER_HOST,
                eth_src: CLIENT,
                operation: ArpOperations::Request,
                sender_mac: CLIENT,
                sender_ip: CLIENT4,
                target_mac: OTHER_HOST,
                target_ip: VIP4,
            })
            .to_vec(),
            Err(DropReason::WrongDestination),
        ),
        (
            "solicitation to another node's group",
            {
                let group = solicited_node(FOREIGN6);
                packet::solicitation(CLIENT, multicast_mac(group), CLIENT6, group, VIP6)
            },
            Err(DropReason::WrongDestination),
        ),
        (
            "solicitation with hop limit 64",
            with_byte(ns(VIP6), HOP_LIMIT_AT, 64),
            Err(DropReason::InvalidNeighbourDiscovery),
        ),
        (
            "solicitation with code 1",
            with_byte(ns(VIP6), ICMP_CODE_AT, 1),
            Err(DropReason::InvalidNeighbourDiscovery),
        ),
        (
            "solicitation with a corrupted checksum",
            {
                let frame = ns(VIP6);
                let last = frame.len() - 1;
                let flipped = frame[last] ^ 0xff;
                with_byte(frame, last, flipped)
            },
            Err(DropReason::BadChecksum),
        ),
        (
            "another host's gratuitous arp",
            packet::garp_request(OTHER_HOST, VIP4).to_vec(),
            Err(DropReason::Gratuitous),
        ),
        (
            "arp probe from 0.0.0.0",
            packet::arp_request(CLIENT, Ipv4Addr::UNSPECIFIED, VIP4).to_vec(),
            Err(DropReason::DadProbe),
        ),
        (
            "duplicate address detection from ::",
            {
                let group = solicited_node(VIP6);
                packet::solicitation(
                    CLIENT,
                    multicast_mac(group),
                    Ipv6Addr::UNSPECIFIED,
                    group,
                    VIP6,
                )
            },
            Err(DropReason::DadProbe),
        ),
        ("arp request for an address not owned", request(FOREIGN4), Err(DropReason::NotOurs)),
        ("solicitation for an address not owned", ns(FOREIGN6), Err(DropReason::NotOurs)),
        (
            "owned address restricted to another interface",
            request(SIDE4),
            Err(DropReason::InterfaceNotAllowed),
        ),
    ]
}

#[test]
fn decision_table() {
    let (owned, iface) = (owned(), eth0());
    for (name, frame, expected) in cases() {
        assert_eq!(decide(&frame, &owned, &iface), expected, "case: {name}");
    }
}

#[test]
fn table_covers_every_drop_reason() {
    let seen: BTreeSet<DropReason> = cases().into_iter().filter_map(|(_, _, r)| r.err()).collect();
    let all: BTreeSet<DropReason> = DropReason::ALL.into_iter().collect();
    assert_eq!(seen, all);
}

#[test]
fn labels_are_distinct_snake_case() {
    let labels: BTreeSet<&str> = DropReason::ALL.iter().map(|r| r.label()).collect();
    assert_eq!(labels.len(), DropReason::ALL.len());
    assert!(labels.iter().all(|l| l.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
}

#[test]
fn answers_with_the_receiving_interface_mac() {
    let eth1 = Iface { name: "eth1".into(), index: 3, mac: OTHER_HOST, automatic: false };
    let reply = decide(&request(SIDE4), &owned(), &eth1).expect("side address is allowed on eth1");
    assert_eq!(reply, Reply::Arp { ip: SIDE4, mac: OTHER_HOST, to_mac: CLIENT, to_ip: CLIENT4 });
    assert_eq!(reply.to_bytes()[6..12], [0x02, 0, 0, 0, 0, 0x0b]);
    // An interface outside the automatic selection answers only addresses naming it.
    assert_eq!(decide(&request(VIP4), &owned(), &eth1), Err(DropReason::InterfaceNotAllowed));
}

/// Recomputes the ICMPv6 checksum of an edited ND frame, as its sender would have.
fn reseal(mut frame: Vec<u8>, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let body_at = ETHERNET_HEADER_LEN + 40;
    let sum = pnet_packet::icmpv6::checksum(
        &pnet_packet::icmpv6::Icmpv6Packet::new(&frame[body_at..]).expect("frame has a body"),
        &src,
        &dst,
    );
    frame[body_at + 2..body_at + 4].copy_from_slice(&sum.to_be_bytes());
    frame
}

#[test]
fn advert_reply_falls_back_to_the_ethernet_source_without_option() {
    // A unicast probe may omit the source link-layer option (RFC 4861 §4.3 "MAY").
    let mut frame = packet::solicitation(CLIENT, SPEAKER, CLIENT6, VIP6, VIP6);
    frame.truncate(frame.len() - packet::LLA_OPTION_LEN);
    frame[ETHERNET_HEADER_LEN + 5] = packet::ND_LEN as u8; // IPv6 payload length
    let frame = reseal(frame, CLIENT6, VIP6);
    assert_eq!(
        decide(&frame, &owned(), &eth0()),
        Ok(Reply::Advert { target: VIP6, mac: SPEAKER, to_mac: CLIENT, to_ip: CLIENT6 })
    );
}

#[test]
fn counts_requests_whatever_their_fate() {
    assert_eq!(is_request(&request(FOREIGN4)), Some(Family::Ipv4));
    assert_eq!(is_request(&ns(FOREIGN6)), Some(Family::Ipv6));
    assert_eq!(is_request(&packet::garp_reply(CLIENT, CLIENT4)), None);
    assert_eq!(is_request(&[0u8; 3]), None);
    assert_eq!(BROADCAST, MacAddr::broadcast());
}

#[test]
fn lookup_handles_many_owned_addresses() {
    // Ten thousand owned addresses: the map answers the one asked about directly.
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
    let many = OwnedSet::new(
        (0..10_000u128).map(|i| (IpAddr::V6(Ipv6Addr::from(base + i)), Scope::Automatic)),
    );
    assert_eq!(many.len_v6(), 10_000);
    let target = Ipv6Addr::from(base + 9_999);
    assert!(decide(&ns(target), &many, &eth0()).is_ok());
    assert_eq!(
        decide(&ns(Ipv6Addr::from(base + 10_000)), &many, &eth0()),
        Err(DropReason::NotOurs)
    );
}

proptest::proptest! {
    /// The decision never panics, whatever arrives on the wire.
    #[test]
    fn decide_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
        let _ = decide(&bytes, &owned(), &eth0());
    }

    /// Mutating any single byte of a valid solicitation never panics either, and whatever is
    /// answered is answered with the interface's MAC.
    #[test]
    fn decide_never_panics_on_mutated_solicitations(at in 0usize..86, value in proptest::prelude::any::<u8>()) {
        let mut frame = ns(VIP6);
        frame[at] = value;
        if let Ok(reply) = decide(&frame, &owned(), &eth0()) {
            proptest::prop_assert_eq!(&reply.to_bytes()[6..12], &[0x02u8, 0, 0, 0, 0, 0x0a][..]);
        }
    }
}
