//! Adj-RIB-Out: exported attributes by session kind, packing, and the diff property.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use proptest::prelude::*;

use super::*;
use crate::wire::{Codec, Message, decode, encode};

fn export(ibgp: bool, my_as: u32, four_octet_as: bool) -> Export {
    Export {
        my_as,
        ibgp,
        codec: Codec { four_octet_as },
        families: [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST].into(),
        next_hop_v4: Some(Ipv4Addr::new(192, 0, 2, 2)),
        next_hop_v6: Some("2001:db8::2".parse().unwrap()),
        graceful_shutdown: false,
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn route(communities: &[u32]) -> RouteAttrs {
    RouteAttrs { communities: communities.iter().copied().collect(), ..RouteAttrs::default() }
}

#[test]
fn exported_attributes_by_session_kind() {
    let p4 = net("198.51.100.10/32");
    let r = RouteAttrs { local_pref: Some(200), ..route(&[7]) };
    let seq = |a: u32| PathAttribute::AsPath(vec![AsSegment::Sequence(vec![a])]);
    let nh = PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 2));
    let origin = PathAttribute::Origin(Origin::Igp);
    let cases: Vec<(&str, Export, Vec<PathAttribute>)> = vec![
        (
            "ebgp: our AS, no LOCAL_PREF",
            export(false, 64512, true),
            vec![origin.clone(), seq(64512), nh.clone(), PathAttribute::Communities(vec![7])],
        ),
        (
            "ibgp: empty path, LOCAL_PREF",
            export(true, 64512, true),
            vec![
                origin.clone(),
                PathAttribute::AsPath(vec![]),
                nh.clone(),
                PathAttribute::LocalPref(200),
                PathAttribute::Communities(vec![7]),
            ],
        ),
        (
            "ebgp, 4-octet AS towards a 2-octet peer: AS_TRANS + AS4_PATH",
            export(false, 4_200_000_000, false),
            vec![
                origin.clone(),
                seq(u32::from(AS_TRANS)),
                nh.clone(),
                PathAttribute::Communities(vec![7]),
                PathAttribute::As4Path(vec![AsSegment::Sequence(vec![4_200_000_000])]),
            ],
        ),
        (
            "ebgp, 4-octet AS, 4-octet peer",
            export(false, 4_200_000_000, true),
            vec![
                origin.clone(),
                seq(4_200_000_000),
                nh.clone(),
                PathAttribute::Communities(vec![7]),
            ],
        ),
        (
            "ibgp drain: GRACEFUL_SHUTDOWN and LOCAL_PREF 0",
            Export { graceful_shutdown: true, ..export(true, 64512, true) },
            vec![
                origin.clone(),
                PathAttribute::AsPath(vec![]),
                nh.clone(),
                PathAttribute::LocalPref(0),
                PathAttribute::Communities(vec![7, GRACEFUL_SHUTDOWN]),
            ],
        ),
        (
            "ebgp drain: the community only",
            Export { graceful_shutdown: true, ..export(false, 64512, true) },
            vec![
                origin.clone(),
                seq(64512),
                nh.clone(),
                PathAttribute::Communities(vec![7, GRACEFUL_SHUTDOWN]),
            ],
        ),
    ];
    for (case, e, want) in cases {
        assert_eq!(e.attributes(&p4, &r), Some(want), "{case}");
    }
}

#[test]
fn ipv6_goes_in_mp_reach_and_unexportable_routes_are_counted() {
    let mut rib = AdjRibOut::default();
    let large = LargeCommunity { global: 64512, local1: 1, local2: 2 };
    let v6 = RouteAttrs { large_communities: [large].into(), ..RouteAttrs::default() };
    rib.set_desired(BTreeMap::from([
        (net("2001:db8:1::10/128"), v6.clone()),
        (net("198.51.100.10/32"), RouteAttrs::default()),
    ]));
    let e = Export { next_hop_v4: None, ..export(false, 64512, true) };
    let diff = rib.updates(&e).unwrap();
    assert_eq!((diff.announced, diff.unexportable), (1, 1), "no IPv4 next hop on an IPv6 session");
    let [u] = diff.updates.as_slice() else { panic!("{diff:?}") };
    assert_eq!(u.attributes.last(), Some(&PathAttribute::LargeCommunities(vec![large])));
    assert!(u.attributes.contains(&PathAttribute::MpReach(MpReach {
        family: AfiSafi::IPV6_UNICAST,
        next_hop: MpNextHop::V6 { global: "2001:db8::2".parse().unwrap(), link_local: None },
        nlri: vec![net("2001:db8:1::10/128")],
    })));
    // A route's own next hop of its family wins over the session's.
    let own: Ipv6Addr = "2001:db8::99".parse().unwrap();
    let attrs = e
        .attributes(
            &net("2001:db8:1::10/128"),
            &RouteAttrs { next_hop: Some(IpAddr::V6(own)), ..v6 },
        )
        .unwrap();
    assert!(attrs.iter().any(|a| matches!(a, PathAttribute::MpReach(r) if r.next_hop == MpNextHop::V6 { global: own, link_local: None })));
}

#[test]
fn unchanged_routes_send_nothing_and_a_change_only_its_prefix() {
    let mut rib = AdjRibOut::default();
    let e = export(false, 64512, true);
    let mut desired: BTreeMap<IpNet, RouteAttrs> =
        (0..10).map(|i| (net(&format!("198.51.100.{i}/32")), route(&[1]))).collect();
    rib.set_desired(desired.clone());
    assert_eq!(rib.updates(&e).unwrap().updates.len(), 1, "ten equal routes, one UPDATE");
    assert_eq!(rib.updates(&e).unwrap(), Diff::default());
    desired.insert(net("198.51.100.3/32"), route(&[2]));
    desired.remove(&net("198.51.100.4/32"));
    rib.set_desired(desired);
    let diff = rib.updates(&e).unwrap();
    assert_eq!((diff.announced, diff.withdrawn, diff.updates.len()), (1, 1, 2));
    assert_eq!(diff.updates[0].withdrawn, vec!["198.51.100.4/32".parse().unwrap()]);
    assert_eq!(diff.updates[1].nlri, vec!["198.51.100.3/32".parse().unwrap()]);
    // Draining re-sends all nine with the community; route refresh re-sends one family.
    let drain = Export { graceful_shutdown: true, ..e.clone() };
    assert_eq!(rib.updates(&drain).unwrap().announced, 9);
    rib.forget_family(AfiSafi::IPV4_UNICAST);
    assert_eq!(rib.updates(&drain).unwrap().announced, 9);
    rib.forget_family(AfiSafi::IPV6_UNICAST);
    assert_eq!(rib.updates(&drain).unwrap(), Diff::default());
}

#[test]
fn packing_fills_messages_up_to_4096_octets() {
    // 2000 /32s with equal attributes: 5 octets each. ORIGIN 4 + AS_PATH 9 + NEXT_HOP 7 = 20
    // attribute octets, so 4096 - 19 - 4 - 20 = 4053 octets of NLRI, 810 prefixes a message.
    let mut rib = AdjRibOut::default();
    let e = export(false, 64512, true);
    let v4: BTreeMap<IpNet, RouteAttrs> = (0..2000u32)
        .map(|i| {
            (
                IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(0xc633_0000 + i), 32).unwrap()),
                RouteAttrs::default(),
            )
        })
        .collect();
    rib.set_desired(v4);
    let diff = rib.updates(&e).unwrap();
    let sizes: Vec<usize> = diff.updates.iter().map(|u| u.nlri.len()).collect();
    assert_eq!(sizes, vec![810, 810, 380]);
    rib.set_desired(BTreeMap::new());
    let diff = rib.updates(&e).unwrap();
    // Withdrawals: 4096 - 23 = 4073 octets, 814 prefixes a message.
    let sizes: Vec<usize> = diff.updates.iter().map(|u| u.withdrawn.len()).collect();
    assert_eq!(sizes, vec![814, 814, 372]);
    for u in &diff.updates {
        assert!(encode(&Message::Update(u.clone()), e.codec).unwrap().len() <= 4096);
    }
}

#[test]
fn ipv6_packing_crosses_the_extended_length_boundary() {
    let mut rib = AdjRibOut::default();
    let e = export(true, 64512, true);
    let v6: BTreeMap<IpNet, RouteAttrs> = (0..1000u128)
        .map(|i| {
            let a = Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + i);
            (IpNet::V6(ipnet::Ipv6Net::new(a, 128).unwrap()), RouteAttrs::default())
        })
        .collect();
    rib.set_desired(v6);
    let diff = rib.updates(&e).unwrap();
    let mut total = 0;
    for u in &diff.updates[..diff.updates.len() - 1] {
        let len = encode(&Message::Update(u.clone()), e.codec).unwrap().len();
        assert!(
            len <= 4096 && len > 4096 - 17,
            "a full message leaves less than one prefix: {len}"
        );
    }
    for u in &diff.updates {
        for a in &u.attributes {
            if let PathAttribute::MpReach(r) = a {
                total += r.nlri.len();
            }
        }
    }
    assert_eq!(total, 1000);
}

// === property: applying what was sent yields what is desired ===

fn pool() -> Vec<IpNet> {
    let mut p: Vec<IpNet> = (0..12).map(|i| net(&format!("198.51.100.{}/32", i * 8))).collect();
    p.extend((0..4).map(|i| net(&format!("203.0.113.{}/30", i * 4))));
    p.extend((0..8).map(|i| net(&format!("2001:db8:{i}::/64"))));
    p
}

fn arb_route() -> impl Strategy<Value = RouteAttrs> {
    (prop::option::of(0u32..3), prop::collection::btree_set(0u32..4, 0..3), any::<bool>()).prop_map(
        |(lp, cs, large)| RouteAttrs {
            next_hop: None,
            local_pref: lp,
            communities: cs,
            large_communities: if large {
                [LargeCommunity { global: 64512, local1: 0, local2: 1 }].into()
            } else {
                BTreeSet::new()
            },
        },
    )
}

fn arb_table() -> impl Strategy<Value = BTreeMap<IpNet, RouteAttrs>> {
    prop::collection::btree_map(prop::sample::select(pool()), arb_route(), 0..24)
}

/// The peer's view: prefix → attributes without NLRI, built only from the encoded UPDATEs.
fn apply(table: &mut BTreeMap<IpNet, Vec<PathAttribute>>, bytes: &[u8], codec: Codec) {
    let Ok(Message::Update(u)) = decode(bytes, codec) else { panic!("not an update") };
    for p in &u.withdrawn {
        table.remove(&IpNet::V4(*p));
    }
    let mut attrs = Vec::new();
    let mut reach = Vec::new();
    for a in u.attributes {
        match a {
            PathAttribute::MpUnreach(un) => un.withdrawn.iter().for_each(|p| {
                table.remove(p);
            }),
            PathAttribute::MpReach(r) => {
                reach = r.nlri.clone();
                attrs.push(PathAttribute::MpReach(MpReach { nlri: vec![], ..r }));
            }
            other => attrs.push(other),
        }
    }
    for p in u.nlri.iter().map(|p| IpNet::V4(*p)).chain(reach) {
        table.insert(p, attrs.clone());
    }
}

proptest! {
    #[test]
    fn emitted_updates_rebuild_the_desired_table(
        steps in prop::collection::vec((arb_table(), any::<bool>(), any::<bool>()), 1..8),
        ibgp in any::<bool>(),
    ) {
        let mut e = export(ibgp, 4_200_000_000, false);
        let mut rib = AdjRibOut::default();
        let mut peer = BTreeMap::new();
        for (desired, drain, refresh) in steps {
            e.graceful_shutdown = drain;
            if refresh {
                rib.forget_family(AfiSafi::IPV6_UNICAST);
            }
            rib.set_desired(desired.clone());
            for u in rib.updates(&e).unwrap().updates {
                let bytes = encode(&Message::Update(u), e.codec).unwrap();
                prop_assert!(bytes.len() <= 4096);
                apply(&mut peer, &bytes, e.codec);
            }
            let want: BTreeMap<IpNet, Vec<PathAttribute>> = desired
                .iter()
                .map(|(p, r)| (*p, e.attributes(p, r).unwrap()))
                .collect();
            prop_assert_eq!(&peer, &want);
            prop_assert_eq!(rib.sent_len(), want.len());
        }
    }
}
