//! Adj-RIB-Out cost: the initial table for 1k and 10k /32 Service IPs (diff, pack, encode), one
//! route changed in a 10k table, and decoding a full UPDATE. Run with
//! `cargo bench -p metallb-bgp`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};
use metallb_bgp::rib::{AdjRibOut, Export, RouteAttrs};
use metallb_bgp::wire::{AfiSafi, Codec, Message, decode, encode};

fn export() -> Export {
    Export {
        my_as: 64512,
        ibgp: false,
        codec: Codec { four_octet_as: true },
        families: [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST].into(),
        next_hop_v4: Some(Ipv4Addr::new(192, 0, 2, 2)),
        next_hop_v6: None,
        graceful_shutdown: false,
    }
}

/// `n` /32s in 198.18.0.0/15 (RFC 2544's benchmarking range), in four community groups.
fn table(n: u32) -> BTreeMap<IpNet, RouteAttrs> {
    (0..n)
        .map(|i| {
            let prefix = IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0xc612_0000 + i), 32).unwrap());
            let attrs =
                RouteAttrs { communities: [64512 << 16 | (i % 4)].into(), ..RouteAttrs::default() };
            (prefix, attrs)
        })
        .collect()
}

fn encode_all(rib: &mut AdjRibOut, e: &Export) -> usize {
    let diff = rib.updates(e).unwrap();
    diff.updates.into_iter().map(|u| encode(&Message::Update(u), e.codec).unwrap().len()).sum()
}

fn bench(c: &mut Criterion) {
    let e = export();
    let mut g = c.benchmark_group("initial_table");
    for n in [1_000u32, 10_000] {
        let desired = table(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &desired, |b, d| {
            b.iter(|| {
                let mut rib = AdjRibOut::default();
                rib.set_desired(d.clone());
                black_box(encode_all(&mut rib, &e))
            })
        });
    }
    g.finish();

    let base = table(10_000);
    let mut changed = base.clone();
    changed.insert(
        IpNet::V4(Ipv4Net::new(Ipv4Addr::new(198, 18, 0, 7), 32).unwrap()),
        RouteAttrs::default(),
    );
    c.bench_function("one_change_in_10000", |b| {
        let mut rib = AdjRibOut::default();
        rib.set_desired(base.clone());
        encode_all(&mut rib, &e);
        let mut flip = false;
        b.iter(|| {
            flip = !flip;
            rib.set_desired(if flip { changed.clone() } else { base.clone() });
            black_box(encode_all(&mut rib, &e))
        })
    });

    let mut rib = AdjRibOut::default();
    rib.set_desired(table(1_000));
    let full = rib.updates(&e).unwrap().updates.remove(0);
    let bytes = encode(&Message::Update(full), e.codec).unwrap();
    c.bench_function("decode_full_update", |b| {
        b.iter(|| black_box(decode(black_box(&bytes), e.codec).unwrap()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).sample_size(20);
    targets = bench
}
criterion_main!(benches);
