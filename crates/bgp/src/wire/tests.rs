//! Golden bytes written from the RFC layouts, round trips, and RFC 7606 error actions.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

use super::*;

const TWO: Codec = Codec { four_octet_as: false };
const FOUR: Codec = Codec { four_octet_as: true };

/// A header: 16 marker octets, length, type (RFC 4271 §4.1).
fn header(len: u16, kind: u8) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&len.to_be_bytes());
    v.push(kind);
    v
}

fn v4(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn roundtrip(m: &Message, codec: Codec, golden: &[u8]) {
    let bytes = encode(m, codec).unwrap();
    assert_eq!(bytes, golden, "encoding of {m:?}");
    assert_eq!(decode(golden, codec).unwrap(), *m);
}

#[test]
fn keepalive_is_a_bare_header() {
    roundtrip(&Message::Keepalive, TWO, &header(19, 4));
}

#[test]
fn open_with_every_capability_we_send() {
    let open = Open {
        version: 4,
        my_as: AS_TRANS,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: vec![
            Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
            Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(4_200_000_000),
            Capability::GracefulRestart(GracefulRestart {
                restart_state: true,
                restart_time: 120,
                families: vec![(AfiSafi::IPV4_UNICAST, true), (AfiSafi::IPV6_UNICAST, false)],
            }),
        ],
    };
    let mut caps = vec![
        1, 4, 0, 1, 0, 1, // MP: AFI 1, reserved, SAFI 1 (RFC 4760 §8)
        1, 4, 0, 2, 0, 1, // MP: AFI 2, SAFI 1
        2, 0, // route refresh (RFC 2918 §2)
        65, 4, 0xfa, 0x56, 0xea, 0x00, // 4-octet AS 4200000000 (RFC 6793 §3)
        64, 10, // graceful restart (RFC 4724 §3), 2 + 2 × 4 octets
        0x80, 120, // R bit set, restart time 120
        0, 1, 1, 0x80, // IPv4 unicast, F bit
        0, 2, 1, 0x00, // IPv6 unicast, no F bit
    ];
    let mut body = vec![4, 0x5b, 0xa0, 0, 90, 192, 0, 2, 1]; // version, AS 23456, hold, id
    body.push(caps.len() as u8 + 2); // optional parameters length
    body.extend_from_slice(&[2, caps.len() as u8]); // parameter type 2: capabilities
    body.append(&mut caps);
    let mut golden = header(19 + body.len() as u16, 1);
    golden.extend_from_slice(&body);
    roundtrip(&Message::Open(open.clone()), TWO, &golden);
    assert_eq!(open.asn(), 4_200_000_000);
}

#[test]
fn open_without_parameters() {
    let open = Open {
        version: 4,
        my_as: 64512,
        hold_time: 0,
        bgp_id: Ipv4Addr::new(198, 51, 100, 7),
        capabilities: vec![],
    };
    let mut golden = header(29, 1);
    golden.extend_from_slice(&[4, 0xfc, 0x00, 0, 0, 198, 51, 100, 7, 0]);
    roundtrip(&Message::Open(open.clone()), TWO, &golden);
    assert_eq!(open.asn(), 64512);
}

#[test]
fn ipv4_update_with_two_octet_as_path_and_communities() {
    let update = Update {
        withdrawn: vec![v4("203.0.113.0/24")],
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(vec![AsSegment::Sequence(vec![64512])]),
            PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 2)),
            PathAttribute::LocalPref(100),
            PathAttribute::Communities(vec![GRACEFUL_SHUTDOWN, (64512 << 16) | 7]),
        ],
        nlri: vec![v4("198.51.100.10/32"), v4("198.51.100.128/25")],
    };
    let mut body = vec![0, 4, 24, 203, 0, 113]; // withdrawn length 4: /24 in 3 octets
    let attrs = [
        0x40, 1, 1, 0, // ORIGIN IGP, well-known transitive
        0x40, 2, 4, 2, 1, 0xfc, 0x00, // AS_PATH: one AS_SEQUENCE of 64512 in 2 octets
        0x40, 3, 4, 192, 0, 2, 2, // NEXT_HOP
        0x40, 5, 4, 0, 0, 0, 100, // LOCAL_PREF 100
        0xc0, 8, 8, 0xff, 0xff, 0, 0, 0xfc, 0, 0, 7, // COMMUNITIES 65535:0 64512:7
    ];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(&[32, 198, 51, 100, 10, 25, 198, 51, 100, 128]); // NLRI
    let mut golden = header(19 + body.len() as u16, 2);
    golden.extend_from_slice(&body);
    roundtrip(&Message::Update(update), TWO, &golden);
}

#[test]
fn four_octet_as_path_and_large_communities() {
    let update = Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Incomplete),
            PathAttribute::AsPath(vec![AsSegment::Sequence(vec![4_200_000_000])]),
            PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 2)),
            PathAttribute::LargeCommunities(vec![LargeCommunity {
                global: 64512,
                local1: 1,
                local2: 2,
            }]),
        ],
        nlri: vec![v4("198.51.100.10/32")],
        ..Update::default()
    };
    let attrs = [
        0x40, 1, 1, 2, // ORIGIN INCOMPLETE
        0x40, 2, 6, 2, 1, 0xfa, 0x56, 0xea, 0x00, // AS_SEQUENCE [4200000000], 4 octets
        0x40, 3, 4, 192, 0, 2, 2, // NEXT_HOP
        0xc0, 32, 12, 0, 0, 0xfc, 0, 0, 0, 0, 1, 0, 0, 0,
        2, // LARGE_COMMUNITIES (RFC 8092 §3)
    ];
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(&[32, 198, 51, 100, 10]);
    let mut golden = header(19 + body.len() as u16, 2);
    golden.extend_from_slice(&body);
    roundtrip(&Message::Update(update.clone()), FOUR, &golden);
    assert_eq!(
        encode(&Message::Update(update), TWO),
        Err(EncodeError::AsnTooWide(4_200_000_000)),
        "a 4-octet AS in a 2-octet path must be the caller's AS_TRANS job"
    );
}

#[test]
fn ipv6_mp_reach_with_link_local_and_mp_unreach() {
    let global: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let link_local: Ipv6Addr = "fe80::2".parse().unwrap();
    let update = Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(vec![]),
            PathAttribute::MpReach(MpReach {
                family: AfiSafi::IPV6_UNICAST,
                next_hop: MpNextHop::V6 { global, link_local: Some(link_local) },
                nlri: vec![net("2001:db8:1::10/128"), net("2001:db8:2::/48")],
            }),
            PathAttribute::MpUnreach(MpUnreach {
                family: AfiSafi::IPV6_UNICAST,
                withdrawn: vec![net("2001:db8:3::/64")],
            }),
        ],
        ..Update::default()
    };
    let mut reach = vec![0, 2, 1, 32]; // AFI 2, SAFI 1, next hop length 32 (RFC 2545 §3)
    reach.extend_from_slice(&global.octets());
    reach.extend_from_slice(&link_local.octets());
    reach.push(0); // reserved
    reach.push(128);
    reach.extend_from_slice(&"2001:db8:1::10".parse::<Ipv6Addr>().unwrap().octets());
    reach.extend_from_slice(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 2]);
    let unreach = [0, 2, 1, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 3, 0, 0];
    let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 0]; // ORIGIN, empty AS_PATH (iBGP)
    attrs.extend_from_slice(&[0x80, 14, reach.len() as u8]);
    attrs.extend_from_slice(&reach);
    attrs.extend_from_slice(&[0x80, 15, unreach.len() as u8]);
    attrs.extend_from_slice(&unreach);
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    let mut golden = header(19 + body.len() as u16, 2);
    golden.extend_from_slice(&body);
    roundtrip(&Message::Update(update), FOUR, &golden);
}

#[test]
fn end_of_rib_markers() {
    // IPv4: withdrawn length 0, attribute length 0 (RFC 4724 §2).
    let mut v4_eor = header(23, 2);
    v4_eor.extend_from_slice(&[0, 0, 0, 0]);
    roundtrip(&Message::Update(Update::end_of_rib(AfiSafi::IPV4_UNICAST)), FOUR, &v4_eor);
    // IPv6: one MP_UNREACH_NLRI with AFI 2, SAFI 1 and nothing withdrawn.
    let mut v6_eor = header(29, 2);
    v6_eor.extend_from_slice(&[0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]);
    roundtrip(&Message::Update(Update::end_of_rib(AfiSafi::IPV6_UNICAST)), FOUR, &v6_eor);
    for f in [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST] {
        assert_eq!(Update::end_of_rib(f).end_of_rib_family(), Some(f));
    }
    let not = Update { nlri: vec![v4("198.51.100.1/32")], ..Update::default() };
    assert_eq!(not.end_of_rib_family(), None);
}

#[test]
fn notification_and_route_refresh() {
    let n = Notification { code: 6, subcode: 2, data: b"\x03bye".to_vec() };
    let mut golden = header(25, 3);
    golden.extend_from_slice(&[6, 2, 3, b'b', b'y', b'e']); // Cease, Administrative Shutdown
    roundtrip(&Message::Notification(n), TWO, &golden);

    let rr = RouteRefresh { family: AfiSafi::IPV6_UNICAST, subtype: 0 };
    let mut golden = header(23, 5);
    golden.extend_from_slice(&[0, 2, 0, 1]); // AFI 2, reserved, SAFI 1 (RFC 2918 §3)
    roundtrip(&Message::RouteRefresh(rr), TWO, &golden);
}

/// Builds an UPDATE frame from an attribute field and an NLRI field.
fn update_frame(attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(attrs);
    body.extend_from_slice(nlri);
    let mut f = header(19 + body.len() as u16, 2);
    f.extend_from_slice(&body);
    f
}

const BASE: [u8; 14] = [0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 192, 0, 2, 9];
const ONE_NLRI: [u8; 5] = [32, 198, 51, 100, 1];

/// (case, frame, expected (code, subcode), action).
type ErrorCase = (&'static str, Vec<u8>, (u8, u8), ErrorAction);

fn error_cases() -> Vec<ErrorCase> {
    use ErrorAction::{SessionReset, TreatAsWithdraw};
    let with = |extra: &[u8]| {
        let mut a = BASE.to_vec();
        a.extend_from_slice(extra);
        update_frame(&a, &ONE_NLRI)
    };
    let mut bad_marker = header(19, 4);
    bad_marker[3] = 0;
    let mut rr_long = header(24, 5);
    rr_long.extend_from_slice(&[0, 1, 0, 1, 0]);
    let mut bad_type = header(19, 9);
    bad_type.truncate(19);
    let mut long_keepalive = header(20, 4);
    long_keepalive.push(0);
    let mut bad_param = header(33, 1);
    bad_param.extend_from_slice(&[4, 0xfc, 0, 0, 90, 192, 0, 2, 1, 4, 1, 2, 0, 0]);
    vec![
        ("marker", bad_marker, (1, 1), SessionReset),
        ("unknown type", bad_type, (1, 3), SessionReset),
        ("keepalive with a body", long_keepalive, (1, 2), SessionReset),
        ("route refresh of 24 octets", rr_long, (7, 1), SessionReset),
        ("optional parameter 1 (authentication)", bad_param, (2, 4), SessionReset),
        (
            "origin 3",
            with(&[])
                .iter()
                .copied()
                .enumerate()
                .map(|(i, b)| if i == 26 { 3 } else { b })
                .collect(),
            (3, 6),
            TreatAsWithdraw,
        ),
        (
            "origin of 2 octets",
            update_frame(&[0x40, 1, 2, 0, 0, 0x40, 2, 0, 0x40, 3, 4, 192, 0, 2, 9], &ONE_NLRI),
            (3, 5),
            TreatAsWithdraw,
        ),
        (
            "origin marked optional",
            update_frame(&[0xc0, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 192, 0, 2, 9], &ONE_NLRI),
            (3, 4),
            TreatAsWithdraw,
        ),
        ("next hop missing", update_frame(&BASE[..7], &ONE_NLRI), (3, 3), TreatAsWithdraw),
        (
            "as path with an empty segment",
            update_frame(&[0x40, 1, 1, 0, 0x40, 2, 2, 2, 0, 0x40, 3, 4, 192, 0, 2, 9], &ONE_NLRI),
            (3, 11),
            TreatAsWithdraw,
        ),
        ("communities of 3 octets", with(&[0xc0, 8, 3, 1, 2, 3]), (3, 5), TreatAsWithdraw),
        (
            "large communities of 8 octets",
            with(&[0xc0, 32, 8, 0, 0, 0, 1, 0, 0, 0, 2]),
            (3, 5),
            TreatAsWithdraw,
        ),
        ("attribute runs past the field", with(&[0xc0, 8, 200, 1]), (3, 5), TreatAsWithdraw),
        ("prefix length 33", update_frame(&BASE, &[33, 1, 2, 3, 4, 5]), (3, 10), SessionReset),
        ("nlri cut short", update_frame(&BASE, &[24, 198, 51]), (3, 10), SessionReset),
        (
            "mp reach twice",
            with(&[0x80, 15, 3, 0, 2, 1, 0x80, 15, 3, 0, 2, 1]),
            (3, 1),
            SessionReset,
        ),
        (
            "mp reach cut in its next hop",
            with(&[0x80, 14, 5, 0, 2, 1, 16, 0]),
            (3, 9),
            SessionReset,
        ),
        (
            "attribute length beyond the message",
            update_frame(&[], &[])
                .iter()
                .copied()
                .enumerate()
                .map(|(i, b)| if i == 22 { 9 } else { b })
                .collect(),
            (3, 1),
            SessionReset,
        ),
    ]
}

#[test]
fn malformed_messages_get_the_rfc_notification_and_action() {
    for (case, frame, (code, subcode), action) in error_cases() {
        let err = decode(&frame, FOUR).expect_err(case);
        assert_eq!(
            (err.notification.code, err.notification.subcode),
            (code, subcode),
            "{case}: {err:?}"
        );
        assert_eq!(err.action, action, "{case}");
    }
}

#[test]
fn informational_attributes_that_are_malformed_are_discarded() {
    // RFC 7606 §7.6/§7.7 and RFC 6793 §6: ATOMIC_AGGREGATE with a value, AGGREGATOR of the
    // wrong size and a malformed AS4_PATH are dropped; the routes stay.
    let mut a = BASE.to_vec();
    a.extend_from_slice(&[0x40, 6, 1, 0, 0xc0, 7, 3, 1, 2, 3, 0xc0, 17, 2, 2, 0]);
    let Message::Update(u) = decode(&update_frame(&a, &ONE_NLRI), FOUR).unwrap() else {
        panic!("not an update")
    };
    assert_eq!(u.attributes.len(), 3);
    assert_eq!(u.nlri, vec![v4("198.51.100.1/32")]);
}

#[test]
fn repeated_attributes_keep_the_first() {
    let mut a = BASE.to_vec();
    a.extend_from_slice(&[0x40, 1, 1, 2]);
    let Message::Update(u) = decode(&update_frame(&a, &ONE_NLRI), FOUR).unwrap() else {
        panic!("not an update")
    };
    assert_eq!(u.attributes[0], PathAttribute::Origin(Origin::Igp));
    assert_eq!(u.attributes.len(), 3);
}

#[test]
fn frame_length_waits_for_a_whole_header_and_body() {
    let k = header(19, 4);
    assert_eq!(frame_length(&k[..18]), Ok(None));
    assert_eq!(frame_length(&k), Ok(Some(19)));
    let mut open = header(29, 1);
    assert_eq!(frame_length(&open), Ok(None));
    open.extend_from_slice(&[0; 10]);
    assert_eq!(frame_length(&open), Ok(Some(29)));
    let err = frame_length(&header(4097, 2)).unwrap_err();
    assert_eq!(err.notification.data, vec![0x10, 0x01], "the erroneous length is the data");
}

// === property tests ===

fn arb_v4() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
}

fn arb_v6() -> impl Strategy<Value = Ipv6Net> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc())
}

fn arb_segments() -> impl Strategy<Value = Vec<AsSegment>> {
    prop::collection::vec(
        (any::<bool>(), prop::collection::vec(any::<u32>(), 1..5))
            .prop_map(|(set, a)| if set { AsSegment::Set(a) } else { AsSegment::Sequence(a) }),
        0..3,
    )
}

fn arb_attributes() -> impl Strategy<Value = Vec<PathAttribute>> {
    let v6_reach =
        (any::<u128>(), prop::option::of(any::<u128>()), prop::collection::vec(arb_v6(), 0..20))
            .prop_map(|(g, ll, nlri)| {
                PathAttribute::MpReach(MpReach {
                    family: AfiSafi::IPV6_UNICAST,
                    next_hop: MpNextHop::V6 {
                        global: g.into(),
                        link_local: ll.map(Ipv6Addr::from),
                    },
                    nlri: nlri.into_iter().map(IpNet::V6).collect(),
                })
            });
    let v4_unreach = prop::collection::vec(arb_v4(), 0..20).prop_map(|w| {
        PathAttribute::MpUnreach(MpUnreach {
            family: AfiSafi::IPV4_UNICAST,
            withdrawn: w.into_iter().map(IpNet::V4).collect(),
        })
    });
    (
        prop_oneof![Just(Origin::Igp), Just(Origin::Egp), Just(Origin::Incomplete)],
        arb_segments(),
        any::<u32>(),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
        prop::option::of(prop::collection::vec(any::<u32>(), 1..10)),
        prop::option::of(prop::collection::vec(any::<(u32, u32, u32)>(), 1..10)),
        prop::option::of(v6_reach),
        prop::option::of(v4_unreach),
        prop::option::of(arb_segments()),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..300)),
    )
        .prop_map(|(origin, path, nh, med, lp, cs, lcs, reach, unreach, as4, unknown)| {
            let mut a = vec![
                PathAttribute::Origin(origin),
                PathAttribute::AsPath(path),
                PathAttribute::NextHop(Ipv4Addr::from(nh)),
            ];
            a.extend(med.map(PathAttribute::MultiExitDisc));
            a.extend(lp.map(PathAttribute::LocalPref));
            a.extend(cs.map(PathAttribute::Communities));
            a.extend(lcs.map(|l| {
                PathAttribute::LargeCommunities(
                    l.into_iter()
                        .map(|(global, local1, local2)| LargeCommunity { global, local1, local2 })
                        .collect(),
                )
            }));
            a.extend(reach);
            a.extend(unreach);
            a.extend(as4.map(PathAttribute::As4Path));
            // Type 99 is unassigned: an optional transitive attribute we carry as bytes.
            a.extend(unknown.map(|value| PathAttribute::Unknown { flags: 0xc0, code: 99, value }));
            a
        })
}

fn arb_message() -> impl Strategy<Value = Message> {
    let family = prop_oneof![Just(AfiSafi::IPV4_UNICAST), Just(AfiSafi::IPV6_UNICAST)];
    let capability = prop_oneof![
        family.clone().prop_map(Capability::MultiProtocol),
        Just(Capability::RouteRefresh),
        any::<u32>().prop_map(Capability::FourOctetAs),
        (any::<bool>(), 0u16..4096, prop::collection::vec((family.clone(), any::<bool>()), 0..3))
            .prop_map(|(restart_state, restart_time, families)| {
                Capability::GracefulRestart(GracefulRestart {
                    restart_state,
                    restart_time,
                    families,
                })
            }),
        // Code 73 (FQDN) is one we do not parse.
        prop::collection::vec(any::<u8>(), 0..8)
            .prop_map(|value| Capability::Unknown { code: 73, value }),
    ];
    prop_oneof![
        Just(Message::Keepalive),
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            prop::collection::vec(capability, 0..8)
        )
            .prop_map(|(version, my_as, hold_time, id, capabilities)| {
                Message::Open(Open { version, my_as, hold_time, bgp_id: id.into(), capabilities })
            }),
        (any::<u8>(), any::<u8>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(
            |(code, subcode, data)| Message::Notification(Notification { code, subcode, data })
        ),
        (family, any::<u8>())
            .prop_map(|(family, subtype)| Message::RouteRefresh(RouteRefresh { family, subtype })),
        (
            prop::collection::vec(arb_v4(), 0..30),
            arb_attributes(),
            prop::collection::vec(arb_v4(), 0..30)
        )
            .prop_map(|(withdrawn, attributes, nlri)| Message::Update(Update {
                withdrawn,
                attributes,
                nlri
            })),
        prop::collection::vec(arb_v4(), 0..30)
            .prop_map(|withdrawn| Message::Update(Update { withdrawn, ..Update::default() })),
    ]
}

proptest! {
    #[test]
    fn decode_inverts_encode(m in arb_message()) {
        let bytes = encode(&m, FOUR).unwrap();
        prop_assert!(bytes.len() <= MAX_MESSAGE_LEN);
        prop_assert_eq!(frame_length(&bytes), Ok(Some(bytes.len())));
        prop_assert_eq!(decode(&bytes, FOUR).unwrap(), m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..600), kind in 0u8..7) {
        let mut frame = header(19 + body.len() as u16, kind);
        frame.extend_from_slice(&body);
        for codec in [TWO, FOUR] {
            let _ = decode(&frame, codec);
        }
        let _ = frame_length(&body);
        let _ = decode(&body, FOUR);
    }

    #[test]
    fn arbitrary_attribute_fields_never_panic(attrs in prop::collection::vec(any::<u8>(), 0..400)) {
        let frame = update_frame(&attrs, &ONE_NLRI);
        for codec in [TWO, FOUR] {
            let _ = decode(&frame, codec);
        }
    }
}
