//! Golden bytes were produced by an independent encoder (a short Python `struct` script
//! following RFC 826/4861 field by field, including the ICMPv6 pseudo-header checksum), not by
//! this module, so a test failure means the frame on the wire changed.

use super::*;
use proptest::prelude::*;

const SPEAKER: MacAddr = MacAddr(0x02, 0, 0, 0, 0, 0x0a);
const CLIENT: MacAddr = MacAddr(0x02, 0, 0, 0, 0, 0x01);
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

const ARP_REPLY: &str =
    "02000000000102000000000a0806000108000604000202000000000ac000020a020000000001c0000201";
const ARP_REQUEST: &str =
    "ffffffffffff02000000000108060001080006040001020000000001c0000201000000000000c000020a";
const GARP_REQUEST: &str =
    "ffffffffffff02000000000a0806000108000604000102000000000ac000020a000000000000c000020a";
const GARP_REPLY: &str =
    "ffffffffffff02000000000a0806000108000604000202000000000ac000020a02000000000ac000020a";
const NS: &str = "3333ff00001002000000000186dd6000000000203aff20010db8000000000000000000000001ff0200000000000000000001ff00001087001c0b0000000020010db80000000000000000000000100101020000000001";
const NS_DAD: &str = "3333ff00001002000000000186dd6000000000183aff00000000000000000000000000000000ff0200000000000000000001ff00001087004ccf0000000020010db8000000000000000000000010";
const NA_SOLICITED: &str = "02000000000102000000000a86dd6000000000203aff20010db800000000000000000000001020010db800000000000000000000000188008a4d6000000020010db8000000000000000000000010020102000000000a";
const NA_UNSOLICITED: &str = "33330000000102000000000a86dd6000000000203aff20010db8000000000000000000000010ff0200000000000000000000000000018800f9032000000020010db8000000000000000000000010020102000000000a";

pub(crate) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test constant is hex"))
        .collect()
}

#[test]
fn arp_frames_match_golden_bytes() {
    assert_eq!(arp_reply(SPEAKER, VIP4, CLIENT, CLIENT4).to_vec(), hex(ARP_REPLY));
    assert_eq!(arp_request(CLIENT, CLIENT4, VIP4).to_vec(), hex(ARP_REQUEST));
    assert_eq!(garp_request(SPEAKER, VIP4).to_vec(), hex(GARP_REQUEST));
    assert_eq!(garp_reply(SPEAKER, VIP4).to_vec(), hex(GARP_REPLY));
}

#[test]
fn neighbour_discovery_frames_match_golden_bytes() {
    let group = solicited_node(VIP6);
    let group_mac = multicast_mac(group);
    assert_eq!(group, "ff02::1:ff00:10".parse::<Ipv6Addr>().expect("literal"));
    assert_eq!(group_mac, MacAddr(0x33, 0x33, 0xff, 0, 0, 0x10));
    assert_eq!(solicitation(CLIENT, group_mac, CLIENT6, group, VIP6), hex(NS));
    assert_eq!(solicitation(CLIENT, group_mac, Ipv6Addr::UNSPECIFIED, group, VIP6), hex(NS_DAD));
    assert_eq!(solicited_advert(SPEAKER, VIP6, CLIENT, CLIENT6).to_vec(), hex(NA_SOLICITED));
    assert_eq!(unsolicited_advert(SPEAKER, VIP6).to_vec(), hex(NA_UNSOLICITED));
}

#[test]
fn parses_every_golden_arp_frame() {
    let Ok(Frame::Arp(arp)) = parse(&hex(GARP_REPLY)) else {
        panic!("garp reply should parse as arp");
    };
    assert_eq!(
        arp,
        Arp {
            eth: Ethernet { dst: BROADCAST, src: SPEAKER },
            operation: 2,
            sender_mac: SPEAKER,
            sender_ip: VIP4,
            target_mac: SPEAKER,
            target_ip: VIP4,
        }
    );
    let Ok(Frame::Arp(req)) = parse(&hex(ARP_REQUEST)) else {
        panic!("request should parse as arp");
    };
    assert_eq!((req.operation, req.sender_ip, req.target_ip), (1, CLIENT4, VIP4));
}

#[test]
fn parses_every_golden_ndp_frame() {
    let Ok(Frame::Icmpv6(ns)) = parse(&hex(NS)) else {
        panic!("ns should parse");
    };
    assert!(ns.checksum_ok);
    assert_eq!(ns.hop_limit, 255);
    assert_eq!(ns.message, Icmpv6Message::Solicitation { target: VIP6, source_mac: Some(CLIENT) });
    let Ok(Frame::Icmpv6(dad)) = parse(&hex(NS_DAD)) else {
        panic!("dad ns should parse");
    };
    assert!(dad.checksum_ok && dad.src.is_unspecified());
    assert_eq!(dad.message, Icmpv6Message::Solicitation { target: VIP6, source_mac: None });
    let Ok(Frame::Icmpv6(na)) = parse(&hex(NA_UNSOLICITED)) else {
        panic!("na should parse");
    };
    assert!(na.checksum_ok);
    assert_eq!(
        na.message,
        Icmpv6Message::Advertisement {
            flags: NeighborAdvertFlags::Override,
            target: VIP6,
            target_mac: Some(SPEAKER),
        }
    );
}

#[test]
fn detects_a_corrupted_checksum() {
    let mut frame = hex(NS);
    let last = frame.len() - 1;
    frame[last] ^= 0xff;
    let Ok(Frame::Icmpv6(ns)) = parse(&frame) else {
        panic!("ns should parse");
    };
    assert!(!ns.checksum_ok);
}

#[test]
fn rejects_malformed_frames() {
    let arp = hex(ARP_REQUEST);
    assert_eq!(parse(&arp[..10]), Err(ParseError::Truncated("ethernet")));
    assert_eq!(parse(&arp[..30]), Err(ParseError::Truncated("arp")));
    let mut ipoib = arp.clone();
    ipoib[18] = 20; // hlen of an InfiniBand address
    assert!(matches!(parse(&ipoib), Err(ParseError::UnsupportedArp { hlen: 20, .. })));

    let ns = hex(NS);
    let mut zero_option = ns.clone();
    zero_option[ND_BODY + ND_LEN + 1] = 0;
    assert_eq!(parse(&zero_option), Err(ParseError::BadOption));
    let mut long_option = ns.clone();
    long_option[ND_BODY + ND_LEN + 1] = 2;
    assert_eq!(parse(&long_option), Err(ParseError::BadOption));
    let mut overlong_payload = ns.clone();
    overlong_payload[ETHERNET_HEADER_LEN + 5] = 0x40;
    assert_eq!(parse(&overlong_payload), Err(ParseError::BadIpv6Header));
    assert_eq!(parse(&ns[..ETHERNET_HEADER_LEN + 20]), Err(ParseError::Truncated("ipv6")));
}

#[test]
fn ignores_ethernet_padding_after_the_ipv6_payload() {
    let mut padded = hex(NS);
    padded.extend_from_slice(&[0; 16]);
    let Ok(Frame::Icmpv6(ns)) = parse(&padded) else {
        panic!("padded ns should parse");
    };
    assert!(ns.checksum_ok);
}

#[test]
fn other_traffic_is_classified_not_rejected() {
    let mut ipv4 = hex(ARP_REQUEST);
    ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
    assert!(matches!(parse(&ipv4), Ok(Frame::Other { .. })));
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(&bytes);
    }

    /// Arbitrary bytes behind a valid Ethernet + IPv6 + ICMPv6 prefix reach the deeper
    /// branches (options walk, ND bodies) that random frames rarely hit.
    #[test]
    fn parse_never_panics_on_arbitrary_nd_bodies(
        icmp_type in prop_oneof![Just(135u8), Just(136u8), any::<u8>()],
        body in proptest::collection::vec(any::<u8>(), 0..80),
        declared in any::<u16>(),
    ) {
        let mut frame = hex(NS)[..ND_BODY].to_vec();
        frame[ETHERNET_HEADER_LEN + 4..ETHERNET_HEADER_LEN + 6].copy_from_slice(&declared.to_be_bytes());
        frame.push(icmp_type);
        frame.extend_from_slice(&body);
        let _ = parse(&frame);
    }

    #[test]
    fn built_frames_parse_back(mac in any::<[u8; 6]>(), v4 in any::<[u8; 4]>(), v6 in any::<[u8; 16]>()) {
        let mac = MacAddr(mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
        let (v4, v6) = (Ipv4Addr::from(v4), Ipv6Addr::from(v6));
        let Ok(Frame::Arp(arp)) = parse(&garp_reply(mac, v4)) else {
            return Err(TestCaseError::fail("garp reply does not parse"));
        };
        prop_assert_eq!((arp.sender_mac, arp.target_mac, arp.sender_ip, arp.target_ip), (mac, mac, v4, v4));
        let Ok(Frame::Icmpv6(na)) = parse(&unsolicited_advert(mac, v6)) else {
            return Err(TestCaseError::fail("unsolicited advert does not parse"));
        };
        prop_assert!(na.checksum_ok);
        prop_assert_eq!(na.message, Icmpv6Message::Advertisement {
            flags: NeighborAdvertFlags::Override, target: v6, target_mac: Some(mac),
        });
    }
}
